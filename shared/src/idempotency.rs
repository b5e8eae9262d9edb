//! Idempotency for handlers' side-effecting actions: Step Functions retries a task after a timeout or a
//! Lambda service error even when the first attempt did its work, so each action runs under a key that is
//! the same across the retries of one task and different everywhere else.
//!
//! The record is `pk=IDEM#<key>, sk=IDEM`: `status` (`IN_PROGRESS` | `COMPLETED`), `payload_hash` (SHA-256
//! of the canonical JSON payload), `result` (the action's output as JSON text), `claim` (this attempt's
//! random token), `claimant` (who claimed it, when the caller names itself: [`Idempotency::run_once_as`]),
//! `in_progress_until` (epoch ms) and `expires_at` (epoch seconds, the table's TTL attribute). Expiry is
//! compared by time in the conditions, never left to TTL deletion, which can lag by days.
//!
//! How long an in-progress claim stands is `max(action timeout, Lambda remaining time)`: it must outlive the
//! whole invocation, so a duplicate arriving while the action still runs is refused, yet it must end, so a
//! handler killed by its timeout does not block the retry forever. Remaining time alone fails the first
//! need whenever the action is started late in an invocation and continues past the clock that was read.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::error::OpsError;
use crate::state::{StateError, StateStore};

/// Default in-progress window when the caller's remaining time is shorter: Lambda's maximum run time.
pub const DEFAULT_ACTION_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Default lifetime of a completed record: long enough to cover a Step Functions redrive (14 days).
pub const DEFAULT_COMPLETED_TTL: Duration = Duration::from_secs(14 * 24 * 3600);

/// Where in a workflow an action runs, as definitions pass it from the context object:
/// `{"execution.$": "$$.Execution.Id", "state.$": "$$.State.Name", "map_index.$": "$$.Map.Item.Index"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskContext {
    /// The execution ARN.
    pub execution: String,
    /// The state's name.
    pub state: String,
    /// The item index inside a Map state.
    #[serde(default)]
    pub map_index: Option<u64>,
}

impl TaskContext {
    /// The `context` field of a handler's input; `InvalidInput` naming `context` when it is missing or
    /// malformed.
    pub fn from_input(input: &Value) -> Result<Self, OpsError> {
        let ctx = input.get("context").ok_or_else(|| {
            OpsError::invalid(
                "context",
                "is required: pass {\"execution.$\": \"$$.Execution.Id\", \"state.$\": \"$$.State.Name\"}",
            )
        })?;
        serde_json::from_value(ctx.clone()).map_err(|e| {
            OpsError::invalid(
                "context",
                format!("must be {{\"execution\": string, \"state\": string, \"map_index\"?: integer}}: {e}"),
            )
        })
    }
}

/// An idempotency key: the same for every retry of one task, different for any other task.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey {
    key: String,
    /// Who claims it, for a key several claimants share.
    claimant: Option<String>,
}

impl IdempotencyKey {
    /// The key of a task; `InvalidInput` (naming the field) when execution or state is empty.
    pub fn for_task(ctx: &TaskContext) -> Result<Self, OpsError> {
        if ctx.execution.trim().is_empty() {
            return Err(OpsError::invalid(
                "context.execution",
                "must be the execution ARN; pass \"execution.$\": \"$$.Execution.Id\"",
            ));
        }
        if ctx.state.trim().is_empty() {
            return Err(OpsError::invalid(
                "context.state",
                "must be the state's name; pass \"state.$\": \"$$.State.Name\"",
            ));
        }
        let mut h = Sha256::new();
        h.update(ctx.execution.as_bytes());
        h.update([0]);
        h.update(ctx.state.as_bytes());
        if let Some(i) = ctx.map_index {
            h.update([0]);
            h.update(i.to_string().as_bytes());
        }
        Ok(Self {
            key: hex::encode(h.finalize()),
            claimant: None,
        })
    }

    /// The same key for one of several claimants that share it (every execution started by a copy of one
    /// event): the record names `claimant`, and a claim in progress under the same claimant is ours, so
    /// the action runs (again) instead of giving `AlreadyInProgress`. That is what happens when the SDK
    /// retried a put whose first attempt was written but whose response was lost, or when Step Functions
    /// retried the task after the claim was written: without the claimant, the owner would take itself for
    /// a duplicate.
    pub fn claimed_by(self, claimant: impl Into<String>) -> Self {
        Self {
            claimant: Some(claimant.into()),
            ..self
        }
    }

    /// The key as stored (hex).
    pub fn as_str(&self) -> &str {
        &self.key
    }
}

/// The payload as canonical JSON (object keys sorted, no whitespace), whatever the map's iteration order.
pub fn canonical_json(value: &Value) -> String {
    fn write(out: &mut String, v: &Value) {
        match v {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{}:", Value::String(k.clone()));
                    write(out, &map[k]);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(out, item);
                }
                out.push(']');
            }
            other => {
                let _ = write!(out, "{other}");
            }
        }
    }
    let mut out = String::new();
    write(&mut out, value);
    out
}

/// SHA-256 (hex) of the canonical JSON of `payload`.
pub fn payload_hash(payload: &Value) -> String {
    hex::encode(Sha256::digest(canonical_json(payload).as_bytes()))
}

/// Runs actions at most once per key.
#[derive(Debug, Clone)]
pub struct Idempotency {
    client: aws_sdk_dynamodb::Client,
    table: String,
    clock: Arc<dyn Clock>,
    action_timeout: Duration,
    completed_ttl: Duration,
}

enum Claim {
    Mine(String),
    Completed(Value),
}

impl Idempotency {
    /// Records in the store's table, on the store's clock, with the default windows.
    pub fn new(store: &StateStore) -> Self {
        Self {
            client: store.client().clone(),
            table: store.table().to_owned(),
            clock: store.clock().clone(),
            action_timeout: DEFAULT_ACTION_TIMEOUT,
            completed_ttl: DEFAULT_COMPLETED_TTL,
        }
    }

    /// Sets the shortest in-progress window (the action's own timeout).
    pub fn with_action_timeout(mut self, timeout: Duration) -> Self {
        self.action_timeout = timeout;
        self
    }

    /// Sets how long a completed result is kept for retries.
    pub fn with_completed_ttl(mut self, ttl: Duration) -> Self {
        self.completed_ttl = ttl;
        self
    }

    fn key(key: &IdempotencyKey) -> HashMap<String, AttributeValue> {
        HashMap::from([
            (
                "pk".to_owned(),
                AttributeValue::S(format!("IDEM#{}", key.as_str())),
            ),
            ("sk".to_owned(), AttributeValue::S("IDEM".to_owned())),
        ])
    }

    /// Runs `action` unless this key already ran: a completed key returns its stored result without running
    /// it; a key running now gives `AlreadyInProgress` (unless its claimant is the key's, see
    /// [`IdempotencyKey::claimed_by`]); a key used with another payload gives `IdempotencyKeyReused`. A
    /// failed action leaves no record, so its retry runs it again. `remaining` is the Lambda's remaining
    /// time, when known.
    pub async fn run_once<F, Fut>(
        &self,
        key: &IdempotencyKey,
        payload: &Value,
        remaining: Option<Duration>,
        action: F,
    ) -> Result<Value, OpsError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Value, OpsError>>,
    {
        let claimant = key.claimant.as_deref();
        let hash = payload_hash(payload);
        let claim = match self.claim(key, &hash, claimant, remaining).await? {
            Claim::Completed(result) => {
                tracing::info!(
                    key = key.as_str(),
                    "action already completed; returning its result"
                );
                return Ok(result);
            }
            Claim::Mine(claim) => claim,
        };
        match action().await {
            Ok(result) => {
                self.complete(key, &claim, &result).await?;
                Ok(result)
            }
            Err(err) => {
                self.abandon(key, &claim).await;
                Err(err)
            }
        }
    }

    async fn claim(
        &self,
        key: &IdempotencyKey,
        hash: &str,
        claimant: Option<&str>,
        remaining: Option<Duration>,
    ) -> Result<Claim, OpsError> {
        let now = self.clock.now_ms();
        let window = self.action_timeout.max(remaining.unwrap_or_default());
        let until = now + i64::try_from(window.as_millis()).unwrap_or(i64::MAX / 2);
        let expires = until / 1000 + i64::try_from(self.completed_ttl.as_secs()).unwrap_or(0);
        let claim = uuid::Uuid::new_v4().simple().to_string();
        let mut item = Self::key(key);
        item.extend([
            ("status".to_owned(), AttributeValue::S("IN_PROGRESS".into())),
            (
                "payload_hash".to_owned(),
                AttributeValue::S(hash.to_owned()),
            ),
            ("claim".to_owned(), AttributeValue::S(claim.clone())),
            (
                "in_progress_until".to_owned(),
                AttributeValue::N(until.to_string()),
            ),
            (
                "expires_at".to_owned(),
                AttributeValue::N(expires.to_string()),
            ),
        ]);
        if let Some(claimant) = claimant {
            item.insert(
                "claimant".to_owned(),
                AttributeValue::S(claimant.to_owned()),
            );
        }
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(pk) OR expires_at < :now_s \
                 OR (#status = :in_progress AND in_progress_until < :now AND payload_hash = :hash)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":now_s", AttributeValue::N((now / 1000).to_string()))
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .expression_attribute_values(":in_progress", AttributeValue::S("IN_PROGRESS".into()))
            .expression_attribute_values(":hash", AttributeValue::S(hash.to_owned()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let old = match result {
            Ok(_) => return Ok(Claim::Mine(claim)),
            Err(SdkError::ServiceError(ctx))
                if matches!(ctx.err(), PutItemError::ConditionalCheckFailedException(_)) =>
            {
                let PutItemError::ConditionalCheckFailedException(e) = ctx.into_err() else {
                    unreachable!("matched above")
                };
                e.item.unwrap_or_default()
            }
            Err(err) => return Err(StateError::aws("PutItem", err).into()),
        };
        let text = |name: &str| old.get(name).and_then(|v| v.as_s().ok()).cloned();
        if text("payload_hash").as_deref() != Some(hash) {
            return Err(OpsError::IdempotencyKeyReused(key.as_str().to_owned()));
        }
        match text("status").as_deref() {
            Some("COMPLETED") => {
                let stored = text("result").unwrap_or_else(|| "null".into());
                let value = serde_json::from_str(&stored).map_err(|e| {
                    OpsError::Internal(format!(
                        "stored result of idempotency key {} is not JSON: {e}",
                        key.as_str()
                    ))
                })?;
                Ok(Claim::Completed(value))
            }
            // Our own claim, written by an earlier attempt (a put whose response was lost and which the SDK
            // sent again, or a retried task): it is still ours, under the token that attempt wrote.
            Some("IN_PROGRESS")
                if claimant.is_some() && text("claimant").as_deref() == claimant =>
            {
                tracing::info!(
                    key = key.as_str(),
                    claimant,
                    "idempotency claim already ours; running the action"
                );
                Ok(Claim::Mine(text("claim").unwrap_or(claim)))
            }
            _ => Err(OpsError::AlreadyInProgress(key.as_str().to_owned())),
        }
    }

    async fn complete(
        &self,
        key: &IdempotencyKey,
        claim: &str,
        result: &Value,
    ) -> Result<(), OpsError> {
        let expires =
            self.clock.now_ms() / 1000 + i64::try_from(self.completed_ttl.as_secs()).unwrap_or(0);
        let outcome = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(key)))
            .update_expression("SET #status = :done, #result = :r, expires_at = :exp")
            .condition_expression("claim = :claim")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#result", "result")
            .expression_attribute_values(":done", AttributeValue::S("COMPLETED".into()))
            .expression_attribute_values(":r", AttributeValue::S(result.to_string()))
            .expression_attribute_values(":exp", AttributeValue::N(expires.to_string()))
            .expression_attribute_values(":claim", AttributeValue::S(claim.to_owned()))
            .send()
            .await;
        match outcome {
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                // The claim ran out and another attempt took the key; the action did run, so its result
                // stands, and the other attempt's record is left alone.
                tracing::warn!(
                    key = key.as_str(),
                    "idempotency claim expired before completion"
                );
                Ok(())
            }
            Err(err) => Err(StateError::aws("UpdateItem", err).into()),
        }
    }

    async fn abandon(&self, key: &IdempotencyKey, claim: &str) {
        let outcome = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(key)))
            .condition_expression("claim = :claim")
            .expression_attribute_values(":claim", AttributeValue::S(claim.to_owned()))
            .send()
            .await;
        if let Err(err) = outcome {
            // The claim expires on its own; the retry waits for it at worst.
            tracing::warn!(
                key = key.as_str(),
                error = %aws_sdk_dynamodb::error::DisplayErrorContext(&err),
                "could not drop the claim of a failed action"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx(execution: &str, state: &str, map_index: Option<u64>) -> TaskContext {
        TaskContext {
            execution: execution.into(),
            state: state.into(),
            map_index,
        }
    }

    #[test]
    fn keys_differ_by_execution_state_and_map_index() {
        let a = IdempotencyKey::for_task(&ctx("arn:e1", "Snapshot", None)).unwrap();
        assert_eq!(
            a,
            IdempotencyKey::for_task(&ctx("arn:e1", "Snapshot", None)).unwrap()
        );
        let others = [
            ctx("arn:e2", "Snapshot", None),
            ctx("arn:e1", "Apply", None),
            ctx("arn:e1", "Snapshot", Some(0)),
        ];
        for other in others {
            assert_ne!(a, IdempotencyKey::for_task(&other).unwrap(), "{other:?}");
        }
        assert_ne!(
            IdempotencyKey::for_task(&ctx("arn:e1", "Snapshot", Some(1))).unwrap(),
            IdempotencyKey::for_task(&ctx("arn:e1", "Snapshot", Some(2))).unwrap()
        );
        // The separator keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(
            IdempotencyKey::for_task(&ctx("ab", "c", None)).unwrap(),
            IdempotencyKey::for_task(&ctx("a", "bc", None)).unwrap()
        );
    }

    #[test]
    fn empty_context_fields_are_invalid_input_naming_the_field() {
        let err = IdempotencyKey::for_task(&ctx("", "S", None)).unwrap_err();
        assert!(
            matches!(err, OpsError::InvalidInput { ref field, .. } if field == "context.execution")
        );
        let err = IdempotencyKey::for_task(&ctx("arn:e", " ", None)).unwrap_err();
        assert!(err.to_string().contains("$$.State.Name"), "{err}");
    }

    #[test]
    fn task_context_is_read_from_the_input() {
        let input = json!({"context": {"execution": "arn:e", "state": "Snapshot", "map_index": 3}});
        assert_eq!(
            TaskContext::from_input(&input).unwrap(),
            ctx("arn:e", "Snapshot", Some(3))
        );
        let no_index = json!({"context": {"execution": "arn:e", "state": "S"}});
        assert_eq!(TaskContext::from_input(&no_index).unwrap().map_index, None);
        for bad in [
            json!({}),
            json!({"context": {"execution": 1, "state": "S"}}),
        ] {
            let err = TaskContext::from_input(&bad).unwrap_err();
            assert!(
                matches!(err, OpsError::InvalidInput { ref field, .. } if field == "context"),
                "{err}"
            );
        }
    }

    #[test]
    fn payload_hash_ignores_key_order_but_not_values() {
        let a = json!({"b": 1, "a": {"y": [1, 2], "x": "s"}});
        let b: Value = serde_json::from_str(r#"{"a":{"x":"s","y":[1,2]},"b":1}"#).unwrap();
        assert_eq!(payload_hash(&a), payload_hash(&b));
        assert_eq!(canonical_json(&a), r#"{"a":{"x":"s","y":[1,2]},"b":1}"#);
        assert_ne!(
            payload_hash(&a),
            payload_hash(&json!({"b": 2, "a": {"y": [1, 2], "x": "s"}}))
        );
        assert_ne!(payload_hash(&json!([1, 2])), payload_hash(&json!([2, 1])));
    }
}
