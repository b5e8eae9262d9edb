//! First use of a one-time key: the first writer of a key records what it is used for, every later writer
//! learns whether it asks for the same thing.
//!
//! The record is `pk=ONCE#<key>, sk=ONCE`: `fingerprint` (what the key was first used for), `value` (what that
//! use produced, e.g. an execution name) and `expires_at` (epoch seconds, the table's TTL attribute). The
//! write is one conditional `PutItem`, so two concurrent first uses cannot both win. An expired record counts
//! as absent in the condition itself: TTL deletion can lag by days and must not keep a key used.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use chrono::{DateTime, Utc};

use crate::state::{StateError, StateStore};

/// What a [`FirstUse::claim`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// The key was unused; it is now recorded for this use.
    New,
    /// The key was already used for the same fingerprint; the value that first use recorded.
    Same {
        /// The first use's value.
        value: String,
    },
    /// The key was already used for something else.
    Other {
        /// The first use's value.
        value: String,
    },
}

/// One-time keys in the state table.
#[derive(Debug, Clone)]
pub struct FirstUse {
    store: StateStore,
}

impl FirstUse {
    /// Records in `store`'s table, on its clock.
    pub fn new(store: &StateStore) -> Self {
        Self {
            store: store.clone(),
        }
    }

    /// Records the first use of `key` for `fingerprint` with `value`, kept until `expires_at`; or tells
    /// whether the use already recorded is the same one.
    pub async fn claim(
        &self,
        key: &str,
        fingerprint: &str,
        value: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<Claimed, StateError> {
        let pk = format!("ONCE#{key}");
        let item = HashMap::from([
            ("pk".to_owned(), AttributeValue::S(pk.clone())),
            ("sk".to_owned(), AttributeValue::S("ONCE".to_owned())),
            (
                "fingerprint".to_owned(),
                AttributeValue::S(fingerprint.to_owned()),
            ),
            ("value".to_owned(), AttributeValue::S(value.to_owned())),
            (
                "expires_at".to_owned(),
                AttributeValue::N(expires_at.timestamp().to_string()),
            ),
        ]);
        let now = self.store.now().timestamp();
        let result = self
            .store
            .client()
            .put_item()
            .table_name(self.store.table())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR expires_at < :now")
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let old = match result {
            Ok(_) => return Ok(Claimed::New),
            Err(SdkError::ServiceError(ctx))
                if matches!(ctx.err(), PutItemError::ConditionalCheckFailedException(_)) =>
            {
                let PutItemError::ConditionalCheckFailedException(e) = ctx.into_err() else {
                    unreachable!("matched above")
                };
                e.item.unwrap_or_default()
            }
            Err(err) => return Err(StateError::aws("PutItem", err)),
        };
        let text = |name: &str| {
            old.get(name)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default()
        };
        let value = text("value");
        Ok(if text("fingerprint") == fingerprint {
            Claimed::Same { value }
        } else {
            Claimed::Other { value }
        })
    }
}
