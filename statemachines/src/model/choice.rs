//! Choice rules of `JSONPath` states as the model holds them, and their parsing: operators, comparisons,
//! type tests and the timestamps they accept.

use serde_json::{Map, Value};

use super::types::{CmpKind, Dynamic, Relation, Rule, TypeTest};
use crate::path::Path;
use chrono::{DateTime, FixedOffset};

const COMPARISONS: &[(&str, CmpKind, Relation)] = &[
    ("StringEquals", CmpKind::String, Relation::Eq),
    ("StringLessThan", CmpKind::String, Relation::Lt),
    ("StringGreaterThan", CmpKind::String, Relation::Gt),
    ("StringLessThanEquals", CmpKind::String, Relation::Le),
    ("StringGreaterThanEquals", CmpKind::String, Relation::Ge),
    ("StringMatches", CmpKind::String, Relation::Matches),
    ("NumericEquals", CmpKind::Numeric, Relation::Eq),
    ("NumericLessThan", CmpKind::Numeric, Relation::Lt),
    ("NumericGreaterThan", CmpKind::Numeric, Relation::Gt),
    ("NumericLessThanEquals", CmpKind::Numeric, Relation::Le),
    ("NumericGreaterThanEquals", CmpKind::Numeric, Relation::Ge),
    ("BooleanEquals", CmpKind::Boolean, Relation::Eq),
    ("TimestampEquals", CmpKind::Timestamp, Relation::Eq),
    ("TimestampLessThan", CmpKind::Timestamp, Relation::Lt),
    ("TimestampGreaterThan", CmpKind::Timestamp, Relation::Gt),
    ("TimestampLessThanEquals", CmpKind::Timestamp, Relation::Le),
    (
        "TimestampGreaterThanEquals",
        CmpKind::Timestamp,
        Relation::Ge,
    ),
];

const TESTS: &[(&str, TypeTest)] = &[
    ("IsNull", TypeTest::Null),
    ("IsPresent", TypeTest::Present),
    ("IsNumeric", TypeTest::Numeric),
    ("IsString", TypeTest::String),
    ("IsBoolean", TypeTest::Boolean),
    ("IsTimestamp", TypeTest::Timestamp),
];

/// Parses an RFC 3339 timestamp as Step Functions accepts it (an uppercase `T` between date and time).
pub fn parse_timestamp(s: &str) -> Option<DateTime<FixedOffset>> {
    if s.len() < 20 || s.as_bytes().get(10) != Some(&b'T') {
        return None;
    }
    DateTime::parse_from_rfc3339(s).ok()
}

/// Parses one rule object; `top` rules carry `Next`, nested ones may not.
pub fn parse_rule(o: &Map<String, Value>, top: bool) -> Result<Rule, String> {
    for k in o.keys() {
        let known = matches!(k.as_str(), "Variable" | "And" | "Or" | "Not" | "Comment")
            || (top && matches!(k.as_str(), "Next" | "Assign" | "Output"))
            || COMPARISONS
                .iter()
                .any(|(n, ..)| n == k || format!("{n}Path") == *k)
            || TESTS.iter().any(|(n, _)| n == k);
        if !known {
            return Err(format!("\"{k}\" is not a supported field of a choice rule"));
        }
    }
    if !top && o.contains_key("Next") {
        return Err("a nested choice rule may not have \"Next\"".into());
    }
    let nested = |v: &Value| -> Result<Rule, String> {
        v.as_object()
            .ok_or_else(|| "a nested rule must be an object".to_string())
            .and_then(|o| parse_rule(o, false))
    };
    if let Some(v) = o.get("And").or_else(|| o.get("Or")) {
        let arr = v
            .as_array()
            .filter(|a| !a.is_empty())
            .ok_or("\"And\"/\"Or\" must be a non-empty array")?;
        let rules = arr.iter().map(nested).collect::<Result<Vec<_>, _>>()?;
        return Ok(if o.contains_key("And") {
            Rule::And(rules)
        } else {
            Rule::Or(rules)
        });
    }
    if let Some(v) = o.get("Not") {
        return Ok(Rule::Not(Box::new(nested(v)?)));
    }
    let var = o
        .get("Variable")
        .and_then(Value::as_str)
        .ok_or("a choice rule needs \"Variable\" and one operator")?;
    let variable = Path::parse(var).map_err(|e| format!("\"Variable\": {e}"))?;
    let mut found = None;
    for (name, kind, relation) in COMPARISONS {
        for path in [false, true] {
            let key = if path {
                format!("{name}Path")
            } else {
                (*name).to_string()
            };
            let Some(v) = o.get(&key) else { continue };
            if found.is_some() {
                return Err("a choice rule takes exactly one comparison operator".into());
            }
            let operand = if path {
                let s = v
                    .as_str()
                    .ok_or_else(|| format!("\"{key}\" must be a path string"))?;
                Dynamic::Path(Path::parse(s).map_err(|e| format!("\"{key}\": {e}"))?)
            } else {
                let ok = match kind {
                    CmpKind::String => v.is_string(),
                    CmpKind::Numeric => v.is_number(),
                    CmpKind::Boolean => v.is_boolean(),
                    CmpKind::Timestamp => v.as_str().and_then(parse_timestamp).is_some(),
                };
                if !ok {
                    return Err(format!("\"{key}\" has a value of the wrong type: {v}"));
                }
                Dynamic::Value(v.clone())
            };
            found = Some(Rule::Compare {
                variable: variable.clone(),
                kind: *kind,
                relation: *relation,
                operand,
            });
        }
    }
    for (name, test) in TESTS {
        if let Some(v) = o.get(*name) {
            if found.is_some() {
                return Err("a choice rule takes exactly one comparison operator".into());
            }
            let expected = v
                .as_bool()
                .ok_or_else(|| format!("\"{name}\" must be true or false"))?;
            found = Some(Rule::Test {
                variable: variable.clone(),
                test: *test,
                expected,
            });
        }
    }
    found.ok_or_else(|| "a choice rule needs a comparison operator".into())
}
