//! Choice rules of `JSONPath` states: parsing the operators and evaluating them.

use chrono::{DateTime, FixedOffset};
use serde_json::{Map, Value};

use crate::error::Failure;
use crate::model::{CmpKind, Dynamic, Relation, Rule, TypeTest};
use crate::path::Path;

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

/// Evaluates a `JSONPath` rule; `resolve` evaluates a path (`None`: selects nothing).
pub fn eval(
    rule: &Rule,
    resolve: &mut dyn FnMut(&Path) -> Result<Option<Value>, Failure>,
) -> Result<bool, Failure> {
    Ok(match rule {
        Rule::And(rs) => {
            for r in rs {
                if !eval(r, resolve)? {
                    return Ok(false);
                }
            }
            true
        }
        Rule::Or(rs) => {
            for r in rs {
                if eval(r, resolve)? {
                    return Ok(true);
                }
            }
            false
        }
        Rule::Not(r) => !eval(r, resolve)?,
        Rule::Test {
            variable,
            test,
            expected,
        } => {
            let v = resolve(variable)?;
            let holds = match (test, &v) {
                (TypeTest::Present, v) => v.is_some(),
                (_, None) => false,
                (TypeTest::Null, Some(v)) => v.is_null(),
                (TypeTest::Numeric, Some(v)) => v.is_number(),
                (TypeTest::String, Some(v)) => v.is_string(),
                (TypeTest::Boolean, Some(v)) => v.is_boolean(),
                (TypeTest::Timestamp, Some(v)) => v.as_str().and_then(parse_timestamp).is_some(),
            };
            holds == *expected
        }
        Rule::Compare {
            variable,
            kind,
            relation,
            operand,
        } => {
            let Some(v) = resolve(variable)? else {
                return Err(Failure::runtime(format!(
                    "Invalid path '{variable}': The choice state's condition path references an invalid value."
                )));
            };
            let rhs = match operand {
                Dynamic::Value(x) => x.clone(),
                Dynamic::Path(p) => resolve(p)?.ok_or_else(|| {
                    Failure::runtime(format!(
                        "Invalid path '{p}': The choice state's condition path references an invalid value."
                    ))
                })?,
                Dynamic::Jsonata(_) | Dynamic::Call(_) => return Ok(false),
            };
            compare(&v, *kind, *relation, &rhs)
        }
        Rule::Condition(_) => false,
    })
}

/// Compares two values the way a Choice operator does; values of another type never match.
pub fn compare(l: &Value, kind: CmpKind, rel: Relation, r: &Value) -> bool {
    use std::cmp::Ordering;
    let ord: Option<Ordering> = match kind {
        CmpKind::String => match (l.as_str(), r.as_str()) {
            (Some(a), Some(b)) if rel == Relation::Matches => return wildcard_match(b, a),
            (Some(a), Some(b)) => Some(a.cmp(b)),
            _ => None,
        },
        CmpKind::Numeric => match (l, r) {
            (Value::Number(a), Value::Number(b)) => a.as_f64().partial_cmp(&b.as_f64()),
            _ => None,
        },
        CmpKind::Boolean => match (l.as_bool(), r.as_bool()) {
            (Some(a), Some(b)) => return rel == Relation::Eq && a == b,
            _ => None,
        },
        CmpKind::Timestamp => match (
            l.as_str().and_then(parse_timestamp),
            r.as_str().and_then(parse_timestamp),
        ) {
            (Some(a), Some(b)) => Some(a.cmp(&b)),
            _ => None,
        },
    };
    let Some(ord) = ord else { return false };
    match rel {
        Relation::Eq => ord == Ordering::Equal,
        Relation::Lt => ord == Ordering::Less,
        Relation::Gt => ord == Ordering::Greater,
        Relation::Le => ord != Ordering::Greater,
        Relation::Ge => ord != Ordering::Less,
        Relation::Matches => false,
    }
}

/// `StringMatches`: `*` matches any run of characters; `\*` and `\\` are literal.
pub fn wildcard_match(pattern: &str, s: &str) -> bool {
    #[derive(PartialEq)]
    enum T {
        Star,
        Ch(char),
    }
    let mut toks = Vec::new();
    let mut it = pattern.chars();
    while let Some(c) = it.next() {
        match c {
            '\\' => toks.push(T::Ch(it.next().unwrap_or('\\'))),
            '*' => toks.push(T::Star),
            c => toks.push(T::Ch(c)),
        }
    }
    let s: Vec<char> = s.chars().collect();
    let (mut p, mut i) = (0usize, 0usize);
    let (mut star, mut mark) = (None, 0usize);
    while i < s.len() {
        if p < toks.len() && toks[p] == T::Ch(s[i]) {
            p += 1;
            i += 1;
        } else if p < toks.len() && toks[p] == T::Star {
            star = Some(p);
            mark = i;
            p += 1;
        } else if let Some(sp) = star {
            p = sp + 1;
            mark += 1;
            i = mark;
        } else {
            return false;
        }
    }
    while p < toks.len() && toks[p] == T::Star {
        p += 1;
    }
    p == toks.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(rule: Value, input: Value) -> Result<bool, Failure> {
        let r = parse_rule(rule.as_object().unwrap(), true).unwrap();
        eval(&r, &mut |p: &Path| Ok(p.select(&input)))
    }

    #[test]
    fn string_numeric_boolean_operators() {
        let input = json!({"s": "b", "n": 2, "t": true, "o": "c"});
        assert!(
            run(
                json!({"Variable": "$.s", "StringEquals": "b", "Next": "x"}),
                input.clone()
            )
            .unwrap()
        );
        assert!(
            run(
                json!({"Variable": "$.s", "StringLessThan": "c"}),
                input.clone()
            )
            .unwrap()
        );
        assert!(
            run(
                json!({"Variable": "$.s", "StringGreaterThanEquals": "b"}),
                input.clone()
            )
            .unwrap()
        );
        assert!(
            run(
                json!({"Variable": "$.s", "StringLessThanPath": "$.o"}),
                input.clone()
            )
            .unwrap()
        );
        assert!(
            run(
                json!({"Variable": "$.n", "NumericEquals": 2.0}),
                input.clone()
            )
            .unwrap()
        );
        assert!(
            run(
                json!({"Variable": "$.n", "NumericGreaterThan": 1}),
                input.clone()
            )
            .unwrap()
        );
        assert!(
            !run(
                json!({"Variable": "$.n", "NumericLessThanEquals": 1}),
                input.clone()
            )
            .unwrap()
        );
        assert!(
            !run(
                json!({"Variable": "$.s", "NumericEquals": 1}),
                input.clone()
            )
            .unwrap()
        );
        assert!(
            run(
                json!({"Variable": "$.t", "BooleanEquals": true}),
                input.clone()
            )
            .unwrap()
        );
        assert!(
            run(
                json!({"Variable": "$.t", "BooleanEqualsPath": "$.t"}),
                input
            )
            .unwrap()
        );
    }

    #[test]
    fn timestamps_and_type_tests() {
        let input =
            json!({"ts": "2016-03-14T01:59:00Z", "bad": "2016-03-14 01:59:00", "nul": null});
        assert!(
            run(
                json!({"Variable": "$.ts", "TimestampEquals": "2016-03-14T01:59:00+00:00"}),
                input.clone()
            )
            .unwrap()
        );
        assert!(
            run(
                json!({"Variable": "$.ts", "TimestampLessThan": "2016-03-14T02:00:00Z"}),
                input.clone()
            )
            .unwrap()
        );
        assert!(
            run(
                json!({"Variable": "$.ts", "IsTimestamp": true}),
                input.clone()
            )
            .unwrap()
        );
        assert!(
            run(
                json!({"Variable": "$.bad", "IsTimestamp": false}),
                input.clone()
            )
            .unwrap()
        );
        assert!(run(json!({"Variable": "$.nul", "IsNull": true}), input.clone()).unwrap());
        assert!(
            run(
                json!({"Variable": "$.missing", "IsPresent": false}),
                input.clone()
            )
            .unwrap()
        );
        assert!(run(json!({"Variable": "$.ts", "IsString": true}), input.clone()).unwrap());
        assert!(run(json!({"Variable": "$.missing", "StringEquals": "x"}), input).is_err());
    }

    #[test]
    fn boolean_combinators() {
        let input = json!({"a": 1, "b": "x"});
        let rule = json!({"And": [{"Variable": "$.a", "NumericEquals": 1}, {"Not": {"Variable": "$.b", "StringEquals": "y"}}]});
        assert!(run(rule, input.clone()).unwrap());
        let rule = json!({"Or": [{"Variable": "$.a", "NumericEquals": 2}, {"Variable": "$.b", "StringEquals": "y"}]});
        assert!(!run(rule, input).unwrap());
    }

    #[test]
    fn string_matches_wildcards() {
        assert!(wildcard_match("log-*.txt", "log-2024.txt"));
        assert!(wildcard_match("*", ""));
        assert!(!wildcard_match("log-*.txt", "log-2024.csv"));
        assert!(wildcard_match("a\\*b", "a*b"));
        assert!(!wildcard_match("a\\*b", "axb"));
    }

    #[test]
    fn parse_errors() {
        assert!(parse_rule(json!({"Variable": "$.a"}).as_object().unwrap(), true).is_err());
        assert!(
            parse_rule(
                json!({"Variable": "$.a", "NumericEquals": "1"})
                    .as_object()
                    .unwrap(),
                true
            )
            .is_err()
        );
        assert!(
            parse_rule(
                json!({"Not": {"Variable": "$.a", "IsNull": true, "Next": "x"}})
                    .as_object()
                    .unwrap(),
                true
            )
            .is_err()
        );
    }
}
