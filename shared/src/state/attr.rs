//! Conversion between records and DynamoDB items: records are stored as plain attributes (readable in the
//! console), not as JSON blobs.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::StateError;

/// A JSON value as a DynamoDB attribute.
pub(crate) fn to_attr(value: &Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(items) => AttributeValue::L(items.iter().map(to_attr).collect()),
        Value::Object(map) => {
            AttributeValue::M(map.iter().map(|(k, v)| (k.clone(), to_attr(v))).collect())
        }
    }
}

/// A DynamoDB attribute as a JSON value (sets become arrays, binaries hex strings).
pub(crate) fn from_attr(attr: &AttributeValue) -> Value {
    match attr {
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::N(n) => n
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| n.parse::<u64>().map(Value::from))
            .or_else(|_| n.parse::<f64>().map(Value::from))
            .unwrap_or_else(|_| Value::String(n.clone())),
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::L(items) => Value::Array(items.iter().map(from_attr).collect()),
        AttributeValue::M(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), from_attr(v))).collect())
        }
        AttributeValue::Ss(items) => Value::from(items.clone()),
        AttributeValue::Ns(items) => Value::from(items.clone()),
        AttributeValue::B(b) => Value::String(hex::encode(b.as_ref())),
        _ => Value::Null,
    }
}

/// A record as item attributes (its top-level fields become attributes).
pub(crate) fn to_item<T: Serialize>(record: &T) -> Result<HashMap<String, AttributeValue>, String> {
    match serde_json::to_value(record).map_err(|e| e.to_string())? {
        Value::Object(map) => Ok(map
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), to_attr(v)))
            .collect()),
        other => Err(format!("a record must be a JSON object, not {other}")),
    }
}

/// An item read back as a record (keys dropped).
pub(crate) fn from_item<T: DeserializeOwned>(
    item: &HashMap<String, AttributeValue>,
) -> Result<T, StateError> {
    let key = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    let map: serde_json::Map<String, Value> = item
        .iter()
        .filter(|(k, _)| k.as_str() != "pk" && k.as_str() != "sk")
        .map(|(k, v)| (k.clone(), from_attr(v)))
        .collect();
    serde_json::from_value(Value::Object(map)).map_err(|e| StateError::Corrupt {
        pk: key("pk"),
        sk: key("sk"),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_and_attributes_convert_both_ways() {
        let v = json!({"a": [1, -2, 2.5, "x", true, null], "b": {"c": 18446744073709551615u64}});
        assert_eq!(from_attr(&to_attr(&v)), v);
    }
}
