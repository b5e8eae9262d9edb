//! A bounded count per key and time window: at most `limit` grants per window, counted by one conditional
//! `UpdateItem` in the state table, so concurrent callers cannot overshoot.
//!
//! The record is `pk=QUOTA#<key>#<window start>, sk=QUOTA`: `n` (grants so far) and `expires_at` (epoch
//! seconds, the table's TTL attribute; a window's record is useless once the window is over).

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::state::{StateError, StateStore};

/// Grants per key and window.
#[derive(Debug, Clone)]
pub struct Quota {
    store: StateStore,
    limit: u32,
    window_seconds: i64,
}

impl Quota {
    /// At most `limit` grants per key in each window of `window_seconds`, in `store`'s table, on its clock.
    pub fn new(store: &StateStore, limit: u32, window_seconds: u32) -> Self {
        Self {
            store: store.clone(),
            limit,
            window_seconds: i64::from(window_seconds.max(1)),
        }
    }

    /// The most grants a key gets in one window.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Takes one grant of `key`'s current window: `true` when one was left, `false` when the window's are
    /// spent (nothing is counted then).
    pub async fn take(&self, key: &str) -> Result<bool, StateError> {
        let now = self.store.now().timestamp();
        let window = now - now.rem_euclid(self.window_seconds);
        let result = self
            .store
            .client()
            .update_item()
            .table_name(self.store.table())
            .key("pk", AttributeValue::S(format!("QUOTA#{key}#{window}")))
            .key("sk", AttributeValue::S("QUOTA".to_owned()))
            .update_expression("ADD n :one SET expires_at = :expires")
            .condition_expression("attribute_not_exists(n) OR n < :limit")
            .expression_attribute_values(":one", AttributeValue::N("1".to_owned()))
            .expression_attribute_values(":limit", AttributeValue::N(self.limit.to_string()))
            .expression_attribute_values(
                ":expires",
                AttributeValue::N((window + 2 * self.window_seconds).to_string()),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(ctx))
                if matches!(
                    ctx.err(),
                    UpdateItemError::ConditionalCheckFailedException(_)
                ) =>
            {
                Ok(false)
            }
            Err(err) => Err(StateError::aws("UpdateItem", err)),
        }
    }
}
