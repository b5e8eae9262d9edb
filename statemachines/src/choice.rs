//! Choice rules of `JSONPath` states: parsing the operators and evaluating them.

use serde_json::Value;

use crate::error::Failure;
pub use crate::model::choice::{parse_rule, parse_timestamp};
use crate::model::{CmpKind, Dynamic, Relation, Rule, TypeTest};
use crate::path::Path;

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
