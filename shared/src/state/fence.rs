//! Fenced writes: one `TransactWriteItems` raises `META.fence` to the caller's lock token on condition that the
//! fence is not newer, checks that the lock item has issued no newer token, and writes the rest. A stale
//! holder's write fails with [`StateError::Fenced`] and changes nothing.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, ConditionCheck, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update,
};

use serde_json::Value;
use sha2::Digest as _;

use super::attr::from_attr;
use super::error::StateError;
use super::keys::{LOCK_SK, META_SK, env_pk};
use super::store::StateStore;

/// How many times a fenced write is retried when DynamoDB cancels it for a conflicting transaction.
const CONFLICT_RETRIES: u32 = 5;

impl StateStore {
    /// Raises the environment's fence to `token` without writing a record: an S3-backed lock calls this
    /// when it grants a token, so that writes with older tokens fail from then on.
    pub async fn raise_fence(&self, environment: &str, token: u64) -> Result<(), StateError> {
        self.fenced_write(environment, token, Vec::new(), Vec::new())
            .await
    }

    pub(super) async fn fenced_write(
        &self,
        environment: &str,
        token: u64,
        extra: Vec<TransactWriteItem>,
        meta_fields: Vec<(&str, AttributeValue)>,
    ) -> Result<(), StateError> {
        let pk = env_pk(environment);
        let key = |sk: &str| {
            HashMap::from([
                ("pk".to_owned(), AttributeValue::S(pk.clone())),
                ("sk".to_owned(), AttributeValue::S(sk.to_owned())),
            ])
        };
        let mut update_expr = "SET #fence = :t".to_owned();
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(META_SK)))
            .condition_expression("attribute_not_exists(#fence) OR #fence <= :t")
            .expression_attribute_names("#fence", "fence")
            .expression_attribute_values(":t", AttributeValue::N(token.to_string()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        for (i, (name, value)) in meta_fields.into_iter().enumerate() {
            update_expr.push_str(&format!(", #f{i} = :v{i}"));
            update = update
                .expression_attribute_names(format!("#f{i}"), name)
                .expression_attribute_values(format!(":v{i}"), value);
        }
        let update = update
            .update_expression(update_expr)
            .build()
            .expect("table, key and expression are set");
        // The lock item may have issued a newer token that has not written yet: checking it too closes the
        // window between a takeover and the new holder's first write.
        let lock_check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(LOCK_SK)))
            .condition_expression("attribute_not_exists(#tok) OR #tok <= :t")
            .expression_attribute_names("#tok", "token")
            .expression_attribute_values(":t", AttributeValue::N(token.to_string()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .expect("table, key and condition are set");
        let mut items = vec![
            TransactWriteItem::builder().update(update).build(),
            TransactWriteItem::builder()
                .condition_check(lock_check)
                .build(),
        ];
        items.extend(extra);

        // The same write always carries the same ClientRequestToken, so sending it again (the SDK's retry
        // of an attempt whose response was lost, our retry below, a retried task) within DynamoDB's 10-minute
        // idempotency window returns success for a write that already committed instead of re-evaluating
        // its conditions, which a takeover since then would fail. A token reused with other parameters is
        // refused (IdempotentParameterMismatch), and the token is derived from all of them.
        // https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html
        let request_token = client_request_token(&items);
        let mut attempt = 0;
        loop {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .client_request_token(&request_token)
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(()),
                Err(err) => err,
            };
            // The same token is still being applied (an earlier attempt whose response was lost): asking
            // again once it finishes gives its outcome.
            if matches!(
                err.as_service_error(),
                Some(TransactWriteItemsError::TransactionInProgressException(_))
            ) && attempt < CONFLICT_RETRIES
            {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                continue;
            }
            let Some(TransactWriteItemsError::TransactionCanceledException(cancel)) =
                err.as_service_error()
            else {
                return Err(StateError::aws("TransactWriteItems", err));
            };
            let reasons = cancel.cancellation_reasons();
            let failed = |i: usize| {
                reasons
                    .get(i)
                    .filter(|r| r.code() == Some("ConditionalCheckFailed"))
            };
            // The refused condition's item (ReturnValuesOnConditionCheckFailure) says which token won.
            let number = |reason: &CancellationReason, attr: &str| {
                reason
                    .item()
                    .and_then(|i| i.get(attr))
                    .and_then(|v| v.as_n().ok())
                    .cloned()
                    .unwrap_or_default()
            };
            let fenced = |reason: String| StateError::Fenced {
                environment: environment.to_owned(),
                token,
                reason,
            };
            if let Some(meta) = failed(0) {
                let fence = number(meta, "fence");
                return Err(fenced(format!("the environment's fence is {fence}")));
            }
            if let Some(lock) = failed(1) {
                let newer = number(lock, "token");
                return Err(fenced(format!("the lock has since issued token {newer}")));
            }
            let conflict = reasons
                .iter()
                .any(|r| r.code() == Some("TransactionConflict"));
            if conflict && attempt < CONFLICT_RETRIES {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
                continue;
            }
            return Err(StateError::aws("TransactWriteItems", err));
        }
    }
}

/// The `ClientRequestToken` of a transaction (at most 36 characters): a digest of everything it writes and
/// checks, so the same write always carries the same token and any other write another.
fn client_request_token(items: &[TransactWriteItem]) -> String {
    let attrs = |m: Option<&HashMap<String, AttributeValue>>| {
        Value::Object(
            m.into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), from_attr(v)))
                .collect(),
        )
    };
    let names = |m: Option<&HashMap<String, String>>| {
        Value::Object(
            m.into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        )
    };
    let parts: Vec<Value> = items
        .iter()
        .map(|item| {
            if let Some(p) = item.put() {
                serde_json::json!({"put": p.table_name(), "item": attrs(Some(p.item())),
                    "if": p.condition_expression(), "names": names(p.expression_attribute_names()),
                    "values": attrs(p.expression_attribute_values())})
            } else if let Some(u) = item.update() {
                serde_json::json!({"update": u.table_name(), "key": attrs(Some(u.key())),
                    "set": u.update_expression(), "if": u.condition_expression(),
                    "names": names(u.expression_attribute_names()),
                    "values": attrs(u.expression_attribute_values())})
            } else if let Some(c) = item.condition_check() {
                serde_json::json!({"check": c.table_name(), "key": attrs(Some(c.key())),
                    "if": c.condition_expression(), "names": names(c.expression_attribute_names()),
                    "values": attrs(c.expression_attribute_values())})
            } else if let Some(d) = item.delete() {
                serde_json::json!({"delete": d.table_name(), "key": attrs(Some(d.key())),
                    "if": d.condition_expression(), "names": names(d.expression_attribute_names()),
                    "values": attrs(d.expression_attribute_values())})
            } else {
                Value::Null
            }
        })
        .collect();
    let digest = sha2::Sha256::digest(crate::idempotency::canonical_json(&Value::Array(parts)));
    hex::encode(digest)[..36].to_owned()
}
