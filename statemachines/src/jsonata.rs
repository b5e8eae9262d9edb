//! `JSONata` expressions, evaluated with the `jsonata-rs` crate.
//!
//! Every evaluation gets a fresh arena: expressions are small and the arena is dropped at once, which
//! is cheaper than caching compiled expressions across the `'a` lifetime the crate ties them to.

use serde_json::Value;

use crate::error::Failure;

/// Evaluates `expr` with `bindings` (names without the `$`). `Ok(None)` means the result is undefined.
pub fn eval(expr: &str, bindings: &[(&str, &Value)]) -> Result<Option<Value>, Failure> {
    let arena = bumpalo::Bump::new();
    let ja = jsonata_rs::JsonAta::new(expr, &arena).map_err(|e| {
        Failure::query(format!(
            "Unable to evaluate the JSONata expression '{expr}': {e}"
        ))
    })?;
    register_step_functions_extensions(&ja);
    let map: std::collections::HashMap<&str, &Value> =
        bindings.iter().map(|(k, v)| (*k, *v)).collect();
    let out = ja.evaluate(None, Some(&map)).map_err(|e| {
        Failure::query(format!(
            "An error occurred while evaluating the expression '{expr}': {e}"
        ))
    })?;
    if out.is_undefined() {
        return Ok(None);
    }
    if out.is_function() {
        return Err(Failure::query(format!(
            "The JSONata expression '{expr}' returned a function"
        )));
    }
    let text = out.serialize(false);
    let v: Value = serde_json::from_str(&text).map_err(|e| {
        Failure::query(format!(
            "The JSONata expression '{expr}' returned an unusable value: {e}"
        ))
    })?;
    Ok(Some(normalise(v)))
}

type JaValue<'a> = jsonata_rs::Value<'a>;
type JaResult<'a> = jsonata_rs::Result<&'a JaValue<'a>>;

/// The functions Step Functions adds to `JSONata`: `$partition`, `$range`, `$hash`, `$random`, `$uuid`,
/// `$parse`. Each goes through the intrinsic function of the same meaning, so both languages agree.
/// Also `$average`, a standard `JSONata` function the crate lacks.
fn register_step_functions_extensions(ja: &jsonata_rs::JsonAta<'_>) {
    ja.register_function("average", 1, average);
    ja.register_function("partition", 2, |ctx, args| {
        via_intrinsic(ctx, args, "ArrayPartition")
    });
    ja.register_function("range", 3, |ctx, args| {
        // AWS returns the range as a JSONata sequence, so a one-item range collapses to the item.
        let arena = ctx.arena;
        let v = via_intrinsic(ctx, args, "ArrayRange")?;
        match to_json(v) {
            Some(Value::Array(items)) => {
                let arr = JaValue::array_with_capacity(
                    arena,
                    items.len(),
                    jsonata_rs::ArrayFlags::SEQUENCE,
                );
                for x in &items {
                    arr.push(from_json(arena, x));
                }
                Ok(arr)
            }
            _ => Ok(v),
        }
    });
    ja.register_function("hash", 2, |ctx, args| via_intrinsic(ctx, args, "Hash"));
    ja.register_function("uuid", 0, |ctx, args| via_intrinsic(ctx, args, "UUID"));
    ja.register_function("parse", 1, |ctx, args| {
        via_intrinsic(ctx, args, "StringToJson")
    });
    ja.register_function("random", 1, |ctx, args| {
        let v = match args.first().map(|a| to_json(a)) {
            Some(Some(seed)) => fastrand::Rng::with_seed(seed.as_f64().unwrap_or(0.0) as u64).f64(),
            _ => fastrand::f64(),
        };
        Ok(from_json(ctx.arena, &Value::from(v)))
    });
}

/// `$average(array)`: the mean of an array of numbers; a single number is its own mean; undefined for
/// an undefined or empty argument; error T0412 when an item is not a number
/// (https://docs.jsonata.org/aggregation-functions#average).
fn average<'a>(ctx: jsonata_rs::FunctionContext<'a, '_>, args: &[&'a JaValue<'a>]) -> JaResult<'a> {
    let arg = args.first().copied().unwrap_or_else(JaValue::undefined);
    if arg.is_undefined() {
        return Ok(JaValue::undefined());
    }
    let items = JaValue::wrap_in_array_if_needed(ctx.arena, arg, jsonata_rs::ArrayFlags::empty());
    if items.is_empty() {
        return Ok(JaValue::undefined());
    }
    let mut sum = 0.0;
    for item in items.members() {
        if !item.is_number() {
            return Err(jsonata_rs::Error::T0412ArgumentMustBeArrayOfType(
                ctx.char_index,
                1,
                ctx.name.to_string(),
                "number".to_string(),
            ));
        }
        sum += item.as_f64();
    }
    Ok(JaValue::number(ctx.arena, sum / items.len() as f64))
}

fn via_intrinsic<'a>(
    ctx: jsonata_rs::FunctionContext<'a, '_>,
    args: &[&'a JaValue<'a>],
    name: &str,
) -> JaResult<'a> {
    let mut call_args = Vec::with_capacity(args.len());
    for a in args {
        call_args.push(crate::intrinsic::Arg::Literal(
            to_json(a).unwrap_or(Value::Null),
        ));
    }
    let call = crate::intrinsic::Call {
        name: name.to_string(),
        args: call_args,
    };
    let out = call
        .eval(&mut |_| Ok(Value::Null))
        .map_err(|f| jsonata_rs::Error::D3137Error(format!("${}: {}", ctx.name, f.cause)))?;
    Ok(from_json(ctx.arena, &out))
}

fn to_json<'a>(v: &'a JaValue<'a>) -> Option<Value> {
    if v.is_undefined() {
        return None;
    }
    serde_json::from_str(&v.serialize(false)).ok()
}

fn from_json<'a>(arena: &'a bumpalo::Bump, v: &Value) -> &'a JaValue<'a> {
    match v {
        Value::Null => JaValue::null(arena),
        Value::Bool(b) => arena.alloc(JaValue::Bool(*b)),
        Value::Number(n) => JaValue::number(arena, n.as_f64().unwrap_or(0.0)),
        Value::String(s) => JaValue::string(arena, s),
        Value::Array(a) => {
            let arr = JaValue::array_with_capacity(arena, a.len(), jsonata_rs::ArrayFlags::empty());
            for x in a {
                arr.push(from_json(arena, x));
            }
            arr
        }
        Value::Object(o) => {
            let obj = JaValue::object_with_capacity(arena, o.len());
            for (k, x) in o {
                obj.insert(k, from_json(arena, x));
            }
            obj
        }
    }
}

/// `JSONata` numbers are doubles; whole numbers come back as integers, as Step Functions prints them.
fn normalise(v: Value) -> Value {
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15 => Value::from(f as i64),
            _ => Value::Number(n),
        },
        Value::Array(a) => Value::Array(a.into_iter().map(normalise).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, normalise(v))).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn evaluates_with_bindings() {
        let states = json!({"input": {"a": [1, 2, 3]}});
        let v = eval(
            "$sum($states.input.a) + $x",
            &[("states", &states), ("x", &json!(1))],
        )
        .unwrap();
        assert_eq!(v, Some(json!(7)));
    }

    #[test]
    fn step_functions_extensions() {
        assert_eq!(
            eval("$partition([1,2,3], 2)", &[]).unwrap(),
            Some(json!([[1, 2], [3]]))
        );
        assert_eq!(
            eval("$range(0, 9, 3)", &[]).unwrap(),
            Some(json!([0, 3, 6, 9]))
        );
        assert_eq!(eval("$range(1, 1, 1)", &[]).unwrap(), Some(json!(1)));
        assert_eq!(
            eval("$hash('input data', 'MD5')", &[]).unwrap(),
            Some(json!("812f45842bc6d66ee14572ce20db8e86"))
        );
        assert_eq!(
            eval(r#"$parse('{"a":1}')"#, &[]).unwrap(),
            Some(json!({"a": 1}))
        );
        assert_eq!(
            eval("$uuid()", &[])
                .unwrap()
                .unwrap()
                .as_str()
                .unwrap()
                .len(),
            36
        );
    }

    #[test]
    fn average_follows_jsonata() {
        assert_eq!(
            eval("$average([1, 2, 3, 4])", &[]).unwrap(),
            Some(json!(2.5))
        );
        assert_eq!(eval("$average([3, 3])", &[]).unwrap(), Some(json!(3)));
        assert_eq!(eval("$average(5)", &[]).unwrap(), Some(json!(5)));
        assert_eq!(eval("$average([])", &[]).unwrap(), None);
        assert_eq!(eval("$average($nothing)", &[]).unwrap(), None);
        let states = json!({"input": {"scores": [{"v": 1}, {"v": 2}]}});
        assert_eq!(
            eval("$average($states.input.scores.v)", &[("states", &states)]).unwrap(),
            Some(json!(1.5))
        );
        let err = eval("$average([1, 'two'])", &[]).unwrap_err();
        assert_eq!(err.error, "States.QueryEvaluationError");
    }

    #[test]
    fn undefined_and_errors() {
        let states = json!({"input": {}});
        assert_eq!(
            eval("$states.input.nope", &[("states", &states)]).unwrap(),
            None
        );
        let err = eval("$states.input.(", &[("states", &states)]).unwrap_err();
        assert_eq!(err.error, "States.QueryEvaluationError");
    }
}
