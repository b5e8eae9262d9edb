//! The DynamoDB lock backend.
//!
//! The item `pk=ENV#<env>, sk=LOCK` holds `holder`, `operation`, `token` (Number), `acquired_at` and
//! `lease_expires_at` (Numbers, epoch milliseconds, so the condition can compare them with `<`). Release
//! removes the holder but keeps the item and its token, so the next grant continues the sequence.
//!
//! A fresh acquire (of a lock without holder) reads the environment's fence, then is one `UpdateItem`
//! returning the old item (`ALL_OLD`), from which the new token (`max(old, fence) + 1`) follows. A held lock
//! is taken over, pinned to the holder and token seen, only when its holder is known not to run, or its lease
//! has ended and the service cannot say it runs ([`super::takeover`]).
//! Tokens never start below the fence: after the S3 backend granted tokens (which raise only the fence) or
//! after the lock item was deleted by hand, counting on from the item alone would hand out tokens every
//! fenced write refuses while an older holder with a higher token could still write. The grant's condition
//! requires the item's token to be at least the fence read; an item below it is lifted by a grant that sets
//! the token to `fence + 1`, pinned to the token seen. When the condition fails, DynamoDB returns the item
//! that made it fail (`ReturnValuesOnConditionCheckFailure=ALL_OLD`), so deciding between "held", "ours
//! already" and "stale holder" costs no extra read.
//!
//! A retried acquire by the same holder keeps its token and only extends the lease: the first attempt may
//! have succeeded with its response lost, and a caller that did see that token must not find it outdated.
//! When that first attempt was a takeover, the retry still audits it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use super::{
    AcquireRequest, LockError, LockGrant, LockInfo, PreviousHolder, ReleaseOutcome, TakeoverReason,
    audit_force_release, audit_takeover, lease_ms, standing,
};
use crate::clock::from_ms;
use crate::ports::executions::Executions;
use crate::state::{LOCK_SK, StateError, StateStore, env_pk};

/// How many times acquire re-reads and re-decides when the lock changes under it.
const ROUNDS: usize = 4;

/// The lock item as read.
#[derive(Debug, Clone, Default)]
struct Item {
    holder: Option<String>,
    operation: String,
    token: u64,
    acquired_at: i64,
    lease_expires_at: i64,
}

impl Item {
    fn parse(environment: &str, item: &HashMap<String, AttributeValue>) -> Result<Self, LockError> {
        let corrupt = |what: &str| LockError::Corrupt {
            environment: environment.to_owned(),
            reason: format!("attribute {what} is missing or not of its type"),
        };
        let num = |name: &str| -> Result<i64, LockError> {
            match item.get(name) {
                None => Ok(0),
                Some(v) => v
                    .as_n()
                    .ok()
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| corrupt(name)),
            }
        };
        let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        Ok(Self {
            holder: text("holder"),
            operation: text("operation").unwrap_or_default(),
            token: u64::try_from(num("token")?).map_err(|_| corrupt("token"))?,
            acquired_at: num("acquired_at")?,
            lease_expires_at: num("lease_expires_at")?,
        })
    }

    fn info(&self, environment: &str) -> Option<LockInfo> {
        self.holder.as_ref().map(|holder| {
            LockInfo::stored(
                environment,
                holder,
                &self.operation,
                self.token,
                self.acquired_at,
                self.lease_expires_at,
            )
        })
    }

    fn describe(&self) -> String {
        standing(self.holder.as_deref(), self.token)
    }
}

/// The DynamoDB-backed [`Lock`].
#[derive(Clone)]
pub struct DynamoDbLock {
    store: StateStore,
    executions: Arc<dyn Executions>,
}

impl std::fmt::Debug for DynamoDbLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoDbLock")
            .field("table", &self.store.table())
            .finish_non_exhaustive()
    }
}

/// What a grant writes over, and so how it sets the token.
enum Over<'a> {
    /// A lock without holder whose token is at least the fence (or no item): the token is incremented.
    FreeAboveFence,
    /// A lock without holder whose token (`seen`) is below the fence: the token is set to `fence + 1`.
    FreeBelowFence { seen: u64 },
    /// A named stale holder: the token is set above both its token and the fence.
    Stale(&'a Item),
}

impl Over<'_> {
    /// The token a grant that sets it gives.
    fn next(&self, floor: u64) -> u64 {
        match self {
            Over::FreeAboveFence | Over::FreeBelowFence { .. } => floor + 1,
            Over::Stale(item) => item.token.max(floor) + 1,
        }
    }
}

enum Attempt {
    /// The write happened; the returned attributes (old or new, as asked).
    Done(Option<HashMap<String, AttributeValue>>),
    /// The condition failed; the item as it was (None when it did not exist).
    Refused(Option<HashMap<String, AttributeValue>>),
}

impl DynamoDbLock {
    /// A lock over the store's table and clock, asking `executions` whether holders still run.
    pub fn new(store: StateStore, executions: Arc<dyn Executions>) -> Self {
        Self { store, executions }
    }

    fn key(environment: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".to_owned(), AttributeValue::S(env_pk(environment))),
            ("sk".to_owned(), AttributeValue::S(LOCK_SK.to_owned())),
        ])
    }

    fn update(
        &self,
        environment: &str,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.store
            .client()
            .update_item()
            .table_name(self.store.table())
            .set_key(Some(Self::key(environment)))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
    }

    async fn send(
        builder: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
    ) -> Result<Attempt, LockError> {
        match builder.send().await {
            Ok(out) => Ok(Attempt::Done(out.attributes)),
            Err(SdkError::ServiceError(ctx))
                if matches!(
                    ctx.err(),
                    UpdateItemError::ConditionalCheckFailedException(_)
                ) =>
            {
                let UpdateItemError::ConditionalCheckFailedException(e) = ctx.into_err() else {
                    unreachable!("matched above")
                };
                Ok(Attempt::Refused(e.item))
            }
            Err(err) => Err(aws_err("UpdateItem", err)),
        }
    }

    /// Writes a new grant over `over` and sets the token above both the item's and the fence (`floor`).
    async fn grant(
        &self,
        req: &AcquireRequest,
        now: i64,
        over: &Over<'_>,
        floor: u64,
    ) -> Result<Attempt, LockError> {
        // Only a lock without holder is free: an expired lease is taken over (Stale) once its holder is known
        // not to run, so a workflow waiting longer than its lease (an approval, a long poll) keeps its lock.
        const FREE: &str = "attribute_not_exists(holder)";
        let (condition, token) = match over {
            Over::FreeAboveFence => (
                format!("{FREE} AND (attribute_not_exists(#token) OR #token >= :floor)"),
                "if_not_exists(#token, :floor) + :one",
            ),
            Over::FreeBelowFence { .. } => (
                format!("{FREE} AND (attribute_not_exists(#token) OR #token = :seen)"),
                ":next",
            ),
            Over::Stale(_) => (
                "holder = :stale_holder AND #token = :stale_token".to_owned(),
                ":next",
            ),
        };
        let mut b = self
            .update(&req.environment)
            .update_expression(format!(
                "SET holder = :me, operation = :op, acquired_at = :now, lease_expires_at = :exp, \
                 #token = {token} REMOVE released_at"
            ))
            .condition_expression(condition)
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":me", AttributeValue::S(req.holder.clone()))
            .expression_attribute_values(":op", AttributeValue::S(req.operation.clone()))
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .expression_attribute_values(
                ":exp",
                AttributeValue::N((now + lease_ms(req.lease)).to_string()),
            )
            .return_values(ReturnValue::AllOld);
        b = match over {
            Over::FreeAboveFence => b
                .expression_attribute_values(":floor", AttributeValue::N(floor.to_string()))
                .expression_attribute_values(":one", AttributeValue::N("1".into())),
            Over::FreeBelowFence { seen } => b
                .expression_attribute_values(":seen", AttributeValue::N(seen.to_string()))
                .expression_attribute_values(
                    ":next",
                    AttributeValue::N(over.next(floor).to_string()),
                ),
            Over::Stale(stale) => b
                .expression_attribute_values(
                    ":stale_holder",
                    AttributeValue::S(stale.holder.clone().unwrap_or_default()),
                )
                .expression_attribute_values(
                    ":stale_token",
                    AttributeValue::N(stale.token.to_string()),
                )
                .expression_attribute_values(
                    ":next",
                    AttributeValue::N(over.next(floor).to_string()),
                ),
        };
        Self::send(b).await
    }

    async fn acquire_inner(&self, req: &AcquireRequest) -> Result<LockGrant, LockError> {
        let env = req.environment.as_str();
        // The fence only rises, so one read serves every round: a token above it is above every token a
        // fenced write has used, whichever backend granted it.
        let floor = self.store.meta(env).await?.fence;
        let mut stale: Option<(Item, TakeoverReason)> = None;
        let mut below_fence: Option<u64> = None;
        for _ in 0..ROUNDS {
            let now = self.store.clock().now_ms();
            let over = match (&stale, below_fence) {
                (Some((item, _)), _) => Over::Stale(item),
                (None, Some(seen)) => Over::FreeBelowFence { seen },
                (None, None) => Over::FreeAboveFence,
            };
            let attempt = self.grant(req, now, &over, floor).await?;
            match attempt {
                Attempt::Done(attrs) => {
                    let old = match &attrs {
                        Some(attrs) => Item::parse(env, attrs)?,
                        None => Item::default(),
                    };
                    let took_over_from = old.holder.clone().map(|holder| PreviousHolder {
                        holder,
                        operation: old.operation.clone(),
                        token: old.token,
                        reason: match &stale {
                            Some((_, reason)) => reason.clone(),
                            None => TakeoverReason::LeaseExpired,
                        },
                    });
                    let token = match over {
                        // The condition held the old token at or above the fence; a missing item
                        // started from the fence.
                        Over::FreeAboveFence => old.token.max(floor) + 1,
                        _ => over.next(floor),
                    };
                    let grant = LockInfo::stored(
                        env,
                        &req.holder,
                        &req.operation,
                        token,
                        now,
                        now + lease_ms(req.lease),
                    )
                    .granted(took_over_from);
                    tracing::info!(
                        environment = env,
                        holder = grant.holder,
                        token = grant.token,
                        took_over_from = grant.took_over_from.as_ref().map(|p| p.holder.as_str()),
                        "lock acquired"
                    );
                    audit_takeover(&self.store, &grant).await;
                    return Ok(grant);
                }
                Attempt::Refused(None) => {
                    // Only the stale-holder condition can fail on a missing item: it was released and
                    // deleted by hand. Start over with the plain condition.
                    stale = None;
                    below_fence = None;
                }
                Attempt::Refused(Some(attrs)) => {
                    let cur = Item::parse(env, &attrs)?;
                    below_fence = None;
                    if cur.token < floor && cur.holder.is_none() {
                        // Free, but counting below the fence: the next round lifts it.
                        stale = None;
                        below_fence = Some(cur.token);
                        continue;
                    }
                    let Some(holder) = cur.holder.clone() else {
                        stale = None;
                        continue;
                    };
                    if holder == req.holder {
                        // Our takeover of the stale holder was written but its response was lost (the SDK
                        // sent it again and our own grant refused the retry): it is still a takeover, and
                        // is audited as one.
                        let took_over_from = stale.as_ref().and_then(|(item, reason)| {
                            (cur.token == Over::Stale(item).next(floor)).then(|| PreviousHolder {
                                holder: item.holder.clone().unwrap_or_default(),
                                operation: item.operation.clone(),
                                token: item.token,
                                reason: reason.clone(),
                            })
                        });
                        match self.reacquire(req, &cur, now).await? {
                            Some(mut grant) => {
                                if took_over_from.is_some() {
                                    grant.took_over_from = took_over_from;
                                    audit_takeover(&self.store, &grant).await;
                                }
                                return Ok(grant);
                            }
                            None => {
                                stale = None;
                                continue;
                            }
                        }
                    }
                    let expired = cur.lease_expires_at < now;
                    let at = self.store.clock().now_ms();
                    match super::takeover(self.executions.as_ref(), &holder, expired, at).await {
                        Some(reason) => {
                            tracing::warn!(
                                environment = env,
                                stale_holder = holder,
                                ?reason,
                                "taking over the lock"
                            );
                            stale = Some((cur, reason));
                        }
                        None => {
                            return Err(LockError::Held {
                                environment: env.to_owned(),
                                holder,
                                operation: cur.operation,
                                since: from_ms(cur.acquired_at),
                            });
                        }
                    }
                }
            }
        }
        // The lock changed under every attempt: someone else is winning the same race.
        let cur = self.read(env).await?;
        Err(LockError::Held {
            environment: env.to_owned(),
            holder: cur.holder.unwrap_or_default(),
            operation: cur.operation,
            since: from_ms(cur.acquired_at),
        })
    }

    /// Extends the lease of a lock the same holder already has; `None` when it changed meanwhile.
    async fn reacquire(
        &self,
        req: &AcquireRequest,
        cur: &Item,
        now: i64,
    ) -> Result<Option<LockGrant>, LockError> {
        let exp = now + lease_ms(req.lease);
        let b = self
            .update(&req.environment)
            .update_expression("SET lease_expires_at = :exp")
            .condition_expression("holder = :me AND #token = :tok")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":me", AttributeValue::S(req.holder.clone()))
            .expression_attribute_values(":tok", AttributeValue::N(cur.token.to_string()))
            .expression_attribute_values(":exp", AttributeValue::N(exp.to_string()));
        match Self::send(b).await? {
            Attempt::Done(_) => {
                tracing::info!(
                    environment = req.environment,
                    holder = req.holder,
                    token = cur.token,
                    "lock re-acquired by its holder"
                );
                Ok(Some(
                    LockInfo::stored(
                        &req.environment,
                        &req.holder,
                        &cur.operation,
                        cur.token,
                        cur.acquired_at,
                        exp,
                    )
                    .granted(None),
                ))
            }
            Attempt::Refused(_) => Ok(None),
        }
    }

    async fn read(&self, environment: &str) -> Result<Item, LockError> {
        let out = self
            .store
            .client()
            .get_item()
            .table_name(self.store.table())
            .set_key(Some(Self::key(environment)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| aws_err("GetItem", e))?;
        match out.item() {
            Some(item) => Item::parse(environment, item),
            None => Ok(Item::default()),
        }
    }

    async fn renew_inner(
        &self,
        environment: &str,
        holder: &str,
        token: u64,
        lease: Duration,
    ) -> Result<LockGrant, LockError> {
        let now = self.store.clock().now_ms();
        let exp = now + lease_ms(lease);
        let b = self
            .update(environment)
            .update_expression("SET lease_expires_at = :exp")
            .condition_expression("holder = :me AND #token = :tok")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":me", AttributeValue::S(holder.to_owned()))
            .expression_attribute_values(":tok", AttributeValue::N(token.to_string()))
            .expression_attribute_values(":exp", AttributeValue::N(exp.to_string()))
            .return_values(ReturnValue::AllNew);
        match Self::send(b).await? {
            Attempt::Done(attrs) => {
                let item = Item::parse(environment, &attrs.unwrap_or_default())?;
                Ok(LockInfo::stored(
                    environment,
                    holder,
                    &item.operation,
                    token,
                    item.acquired_at,
                    exp,
                )
                .granted(None))
            }
            Attempt::Refused(old) => {
                let cur = match old {
                    Some(attrs) => Item::parse(environment, &attrs)?,
                    None => Item::default(),
                };
                Err(LockError::Lost {
                    environment: environment.to_owned(),
                    reason: format!(
                        "{holder} with token {token} no longer holds it: {}",
                        cur.describe()
                    ),
                })
            }
        }
    }

    async fn release_inner(
        &self,
        environment: &str,
        holder: &str,
        token: u64,
    ) -> Result<ReleaseOutcome, LockError> {
        let now = self.store.clock().now_ms();
        let b = self
            .update(environment)
            .update_expression(
                "REMOVE holder, operation SET lease_expires_at = :zero, released_at = :now",
            )
            .condition_expression("holder = :me AND #token = :tok")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":me", AttributeValue::S(holder.to_owned()))
            .expression_attribute_values(":tok", AttributeValue::N(token.to_string()))
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()));
        match Self::send(b).await? {
            Attempt::Done(_) => {
                tracing::info!(environment, holder, token, "lock released");
                Ok(ReleaseOutcome::released())
            }
            Attempt::Refused(old) => {
                let cur = match old {
                    Some(attrs) => Item::parse(environment, &attrs)?,
                    None => Item::default(),
                };
                let reason = format!(
                    "not held by {holder} with token {token}: {}",
                    cur.describe()
                );
                tracing::info!(environment, holder, token, reason, "nothing to release");
                Ok(ReleaseOutcome::not_released(reason))
            }
        }
    }

    async fn force_release_inner(
        &self,
        environment: &str,
        actor: &str,
        reason: &str,
    ) -> Result<Option<LockInfo>, LockError> {
        let now = self.store.clock().now_ms();
        let b = self
            .update(environment)
            .update_expression(
                "REMOVE holder, operation SET lease_expires_at = :zero, released_at = :now",
            )
            .condition_expression("attribute_exists(holder)")
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .return_values(ReturnValue::AllOld);
        let released = match Self::send(b).await? {
            Attempt::Done(attrs) => {
                Item::parse(environment, &attrs.unwrap_or_default())?.info(environment)
            }
            Attempt::Refused(_) => None,
        };
        audit_force_release(&self.store, environment, actor, reason, released.as_ref()).await?;
        Ok(released)
    }

    async fn status_inner(&self, environment: &str) -> Result<Option<LockInfo>, LockError> {
        Ok(self.read(environment).await?.info(environment))
    }

    async fn list_inner(&self) -> Result<Vec<LockInfo>, LockError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .store
                .client()
                .scan()
                .table_name(self.store.table())
                .filter_expression("sk = :lock AND attribute_exists(holder)")
                .expression_attribute_values(":lock", AttributeValue::S(LOCK_SK.into()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| aws_err("Scan", e))?;
            for item in page.items() {
                let env = item
                    .get("pk")
                    .and_then(|v| v.as_s().ok())
                    .and_then(|pk| pk.strip_prefix("ENV#"))
                    .unwrap_or_default()
                    .to_owned();
                if let Some(info) = Item::parse(&env, item)?.info(&env) {
                    out.push(info);
                }
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        out.sort_by(|a, b| a.environment.cmp(&b.environment));
        Ok(out)
    }
}

fn aws_err<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> LockError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match StateError::aws(operation, err) {
        StateError::Aws {
            operation,
            throttled,
            source,
        } => LockError::Aws {
            operation,
            throttled,
            source,
        },
        other => LockError::State(other),
    }
}

super::lock_via_inner!(DynamoDbLock);
