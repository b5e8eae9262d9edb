//! Paged queries: the opaque cursor handed back for the next page, page requests, pages and time ranges.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::attr::from_item;
use super::error::StateError;

/// An opaque position in a query, handed back to fetch the next page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cursor(String);

impl Cursor {
    pub(super) fn from_key(key: &HashMap<String, AttributeValue>) -> Self {
        let json: serde_json::Map<String, Value> = key
            .iter()
            .filter_map(|(k, v)| v.as_s().ok().map(|s| (k.clone(), Value::String(s.clone()))))
            .collect();
        Cursor(hex::encode(Value::Object(json).to_string()))
    }

    pub(super) fn to_key(&self) -> Result<HashMap<String, AttributeValue>, StateError> {
        let bad = || StateError::InvalidCursor(self.0.clone());
        let bytes = hex::decode(&self.0).map_err(|_| bad())?;
        let json: HashMap<String, String> = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        if !json.contains_key("pk") || !json.contains_key("sk") || json.len() != 2 {
            return Err(bad());
        }
        Ok(json
            .into_iter()
            .map(|(k, v)| (k, AttributeValue::S(v)))
            .collect())
    }

    /// The cursor as a string, to pass through JSON.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A cursor from a string handed out earlier; checked when used.
    pub fn from_string(s: impl Into<String>) -> Self {
        Cursor(s.into())
    }
}

/// Which page to fetch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// At most this many items (DynamoDB may return fewer and a cursor).
    pub limit: Option<u32>,
    /// Where the previous page ended.
    pub cursor: Option<Cursor>,
}

impl PageRequest {
    /// The first page of at most `limit` items.
    pub fn first(limit: u32) -> Self {
        Self {
            limit: Some(limit),
            cursor: None,
        }
    }
}

/// One page of a query, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// The cursor for the next page; `None` on the last page.
    pub next: Option<Cursor>,
}

impl<T: serde::de::DeserializeOwned> Page<T> {
    /// One `Query` answer as a page: its items as records, and where the next page starts.
    pub(crate) fn from_query(
        out: &aws_sdk_dynamodb::operation::query::QueryOutput,
    ) -> Result<Self, StateError> {
        let items = out
            .items()
            .iter()
            .map(from_item::<T>)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page {
            items,
            next: out.last_evaluated_key().map(Cursor::from_key),
        })
    }
}

/// A time range, both ends inclusive; an open end is unbounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    /// Earliest time included.
    pub from: Option<DateTime<Utc>>,
    /// Latest time included.
    pub to: Option<DateTime<Utc>>,
}

impl TimeRange {
    /// Every time.
    pub fn all() -> Self {
        Self::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let key = HashMap::from([
            ("pk".to_owned(), AttributeValue::S("ENV#a".into())),
            ("sk".to_owned(), AttributeValue::S("BACKUP#x".into())),
        ]);
        let cursor = Cursor::from_key(&key);
        assert_eq!(Cursor::from_string(cursor.as_str()).to_key().unwrap(), key);
        assert!(matches!(
            Cursor::from_string("zz").to_key(),
            Err(StateError::InvalidCursor(_))
        ));
        assert!(
            Cursor::from_string(hex::encode("{\"pk\":\"a\"}"))
                .to_key()
                .is_err()
        );
    }
}
