//! Fenced writes: one `TransactWriteItems` raises `META.fence` to the caller's lock token on condition that the
//! fence is not newer, checks that the lock item has issued no newer token, and writes the rest. A stale
//! holder's write fails with [`StateError::Fenced`] and changes nothing.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};

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

        let mut attempt = 0;
        loop {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(()),
                Err(err) => err,
            };
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
            if let Some(meta) = failed(0) {
                let fence = meta
                    .item()
                    .and_then(|i| i.get("fence"))
                    .and_then(|v| v.as_n().ok())
                    .cloned()
                    .unwrap_or_default();
                return Err(StateError::Fenced {
                    environment: environment.to_owned(),
                    token,
                    reason: format!("the environment's fence is {fence}"),
                });
            }
            if let Some(lock) = failed(1) {
                let newer = lock
                    .item()
                    .and_then(|i| i.get("token"))
                    .and_then(|v| v.as_n().ok())
                    .cloned()
                    .unwrap_or_default();
                return Err(StateError::Fenced {
                    environment: environment.to_owned(),
                    token,
                    reason: format!("the lock has since issued token {newer}"),
                });
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
