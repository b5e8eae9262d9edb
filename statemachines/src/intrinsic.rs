//! The `States.*` intrinsic functions of JSONPath states: parser and evaluator.

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::error::Failure;
use crate::path::Path;

/// An argument of an intrinsic call.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// A string literal: its value, and its raw text (escapes kept) for `States.Format` templates.
    Str(String, String),
    /// A number, `true`, `false` or `null`.
    Literal(Value),
    /// A path into the input, the context object or a variable.
    Path(Path),
    /// A nested call.
    Call(Call),
}

/// A parsed intrinsic call, e.g. `States.Format('{}', $.x)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The function name without the `States.` prefix.
    pub name: String,
    /// The arguments.
    pub args: Vec<Arg>,
}

const FUNCTIONS: &[(&str, usize, usize)] = &[
    ("Format", 1, usize::MAX),
    ("StringToJson", 1, 1),
    ("JsonToString", 1, 1),
    ("Array", 0, usize::MAX),
    ("ArrayPartition", 2, 2),
    ("ArrayContains", 2, 2),
    ("ArrayRange", 3, 3),
    ("ArrayGetItem", 2, 2),
    ("ArrayLength", 1, 1),
    ("ArrayUnique", 1, 1),
    ("Base64Encode", 1, 1),
    ("Base64Decode", 1, 1),
    ("Hash", 2, 2),
    ("JsonMerge", 3, 3),
    ("MathRandom", 2, 3),
    ("MathAdd", 2, 2),
    ("StringSplit", 2, 2),
    ("UUID", 0, 0),
];

/// True when `s` looks like an intrinsic call rather than a path.
pub fn looks_like_call(s: &str) -> bool {
    s.trim_start().starts_with("States.")
}

impl Call {
    /// Parses a complete intrinsic call.
    pub fn parse(src: &str) -> Result<Call, String> {
        let mut p = P { s: src, i: 0 };
        p.ws();
        let call = p.call()?;
        p.ws();
        if p.i != src.len() {
            return Err(format!("unexpected text after the call at offset {}", p.i));
        }
        Ok(call)
    }

    /// Evaluates the call; `resolve` evaluates a path argument.
    pub fn eval(
        &self,
        resolve: &mut dyn FnMut(&Path) -> Result<Value, Failure>,
    ) -> Result<Value, Failure> {
        let mut args = Vec::with_capacity(self.args.len());
        for a in &self.args {
            args.push(match a {
                Arg::Str(v, _) => Value::String(v.clone()),
                Arg::Literal(v) => v.clone(),
                Arg::Path(p) => resolve(p)?,
                Arg::Call(c) => c.eval(resolve)?,
            });
        }
        let fail = |m: String| Failure::intrinsic(m);
        let name = self.name.as_str();
        match name {
            "Format" => {
                let template = match &self.args[0] {
                    Arg::Str(_, raw) => raw.clone(),
                    _ => match &args[0] {
                        Value::String(s) => s
                            .replace('{', "\\{")
                            .replace('}', "\\}")
                            .replace("\\{\\}", "{}"),
                        other => {
                            return Err(fail(format!(
                                "The first argument of States.Format must be a string, not {other}"
                            )));
                        }
                    },
                };
                format(&template, &args[1..]).map_err(fail)
            }
            "StringToJson" => {
                let s = want_str(&args[0], name)?;
                serde_json::from_str(s).map_err(|e| fail(format!("States.StringToJson: {e}")))
            }
            "JsonToString" => Ok(Value::String(args[0].to_string())),
            "Array" => Ok(Value::Array(args)),
            "ArrayPartition" => {
                let arr = want_arr(&args[0], name)?;
                let size = want_int(&args[1], name)?;
                if size <= 0 {
                    return Err(fail(format!(
                        "Invalid chunk size '{size}': must be greater than 0"
                    )));
                }
                Ok(Value::Array(
                    arr.chunks(size as usize)
                        .map(|c| Value::Array(c.to_vec()))
                        .collect(),
                ))
            }
            "ArrayContains" => Ok(Value::Bool(want_arr(&args[0], name)?.contains(&args[1]))),
            "ArrayRange" => {
                let (start, end, step) = (
                    want_int(&args[0], name)?,
                    want_int(&args[1], name)?,
                    want_int(&args[2], name)?,
                );
                if step == 0 {
                    return Err(fail("States.ArrayRange: the step must not be 0".into()));
                }
                let mut out = Vec::new();
                let mut i = start;
                while (step > 0 && i <= end) || (step < 0 && i >= end) {
                    out.push(Value::from(i));
                    if out.len() > 1000 {
                        return Err(fail(
                            "States.ArrayRange: the result exceeds 1000 items".into(),
                        ));
                    }
                    i += step;
                }
                Ok(Value::Array(out))
            }
            "ArrayGetItem" => {
                let arr = want_arr(&args[0], name)?;
                let idx = want_int(&args[1], name)?;
                usize::try_from(idx)
                    .ok()
                    .and_then(|i| arr.get(i))
                    .cloned()
                    .ok_or_else(|| {
                        fail(format!(
                            "Index {idx} out of bounds for an array of {} items",
                            arr.len()
                        ))
                    })
            }
            "ArrayLength" => Ok(Value::from(want_arr(&args[0], name)?.len())),
            "ArrayUnique" => {
                let mut out: Vec<Value> = Vec::new();
                for v in want_arr(&args[0], name)? {
                    if !out.contains(v) {
                        out.push(v.clone());
                    }
                }
                Ok(Value::Array(out))
            }
            "Base64Encode" => {
                let s = want_str(&args[0], name)?;
                Ok(Value::String(
                    base64::engine::general_purpose::STANDARD.encode(s.as_bytes()),
                ))
            }
            "Base64Decode" => {
                let s = want_str(&args[0], name)?;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(s.as_bytes())
                    .map_err(|e| fail(format!("States.Base64Decode: {e}")))?;
                String::from_utf8(bytes)
                    .map(Value::String)
                    .map_err(|e| fail(format!("States.Base64Decode: {e}")))
            }
            "Hash" => {
                let data = match &args[0] {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let algo = want_str(&args[1], name)?;
                hash(data.as_bytes(), algo).map(Value::String).map_err(fail)
            }
            "JsonMerge" => {
                let (Value::Object(a), Value::Object(b)) = (&args[0], &args[1]) else {
                    return Err(fail("States.JsonMerge merges two JSON objects".into()));
                };
                if args[2] != Value::Bool(false) {
                    return Err(fail(
                        "States.JsonMerge supports only a shallow merge (false)".into(),
                    ));
                }
                let mut out: Map<String, Value> = a.clone();
                for (k, v) in b {
                    out.insert(k.clone(), v.clone());
                }
                Ok(Value::Object(out))
            }
            "MathRandom" => {
                let (lo, hi) = (want_int(&args[0], name)?, want_int(&args[1], name)?);
                if hi <= lo {
                    return Err(fail(
                        "States.MathRandom: the end must be greater than the start".into(),
                    ));
                }
                let mut rng = match args.get(2) {
                    Some(seed) => fastrand::Rng::with_seed(want_int(seed, name)? as u64),
                    None => fastrand::Rng::new(),
                };
                Ok(Value::from(rng.i64(lo..hi)))
            }
            "MathAdd" => {
                // Step Functions rounds each operand half up (Java's Math.round) before adding.
                let round = |v: &Value| -> Result<i64, Failure> {
                    v.as_f64().map(|x| (x + 0.5).floor() as i64).ok_or_else(|| {
                        Failure::intrinsic(format!("States.MathAdd: expected a number, got {v}"))
                    })
                };
                let (a, b) = (round(&args[0])?, round(&args[1])?);
                Ok(Value::from(a + b))
            }
            "StringSplit" => {
                let s = want_str(&args[0], name)?;
                let delims: Vec<char> = want_str(&args[1], name)?.chars().collect();
                Ok(Value::Array(
                    s.split(|c| delims.contains(&c))
                        .filter(|p| !p.is_empty())
                        .map(|p| Value::String(p.to_string()))
                        .collect(),
                ))
            }
            "UUID" => Ok(Value::String(uuid::Uuid::new_v4().to_string())),
            other => Err(fail(format!("Unknown intrinsic function States.{other}"))),
        }
    }
}

fn want_str<'a>(v: &'a Value, f: &str) -> Result<&'a str, Failure> {
    v.as_str().ok_or_else(|| {
        Failure::intrinsic(format!("States.{f}: expected a string argument, got {v}"))
    })
}

fn want_arr<'a>(v: &'a Value, f: &str) -> Result<&'a Vec<Value>, Failure> {
    v.as_array().ok_or_else(|| {
        Failure::intrinsic(format!("States.{f}: expected an array argument, got {v}"))
    })
}

fn want_int(v: &Value, f: &str) -> Result<i64, Failure> {
    if let Some(i) = v.as_i64() {
        return Ok(i);
    }
    match v.as_f64() {
        Some(x) if x.fract() == 0.0 => Ok(x as i64),
        _ => Err(Failure::intrinsic(format!(
            "States.{f}: expected an integer argument, got {v}"
        ))),
    }
}

/// Fills `{}` placeholders of a template whose literal braces are escaped as `\{`, `\}`.
fn format(template: &str, args: &[Value]) -> Result<Value, String> {
    let mut out = String::new();
    let mut it = template.chars().peekable();
    let mut n = 0;
    while let Some(c) = it.next() {
        match c {
            '\\' => {
                if let Some(next) = it.next() {
                    out.push(next);
                }
            }
            '{' if it.peek() == Some(&'}') => {
                it.next();
                let arg = args.get(n).ok_or_else(|| {
                    format!(
                        "States.Format: the template has more placeholders than the {} arguments",
                        args.len()
                    )
                })?;
                match arg {
                    Value::String(s) => out.push_str(s),
                    other => out.push_str(&other.to_string()),
                }
                n += 1;
            }
            c => out.push(c),
        }
    }
    if n != args.len() {
        return Err(format!(
            "States.Format: {} placeholders but {} arguments",
            n,
            args.len()
        ));
    }
    Ok(Value::String(out))
}

fn hash(data: &[u8], algo: &str) -> Result<String, String> {
    use sha2::Digest as _;
    Ok(match algo {
        "MD5" => hex::encode(md5::Md5::digest(data)),
        "SHA-1" => hex::encode(sha1::Sha1::digest(data)),
        "SHA-256" => hex::encode(sha2::Sha256::digest(data)),
        "SHA-384" => hex::encode(sha2::Sha384::digest(data)),
        "SHA-512" => hex::encode(sha2::Sha512::digest(data)),
        other => return Err(format!("States.Hash: unsupported algorithm '{other}'")),
    })
}

struct P<'a> {
    s: &'a str,
    i: usize,
}

impl P<'_> {
    fn ws(&mut self) {
        while self.s[self.i..].starts_with([' ', '\t', '\n']) {
            self.i += 1;
        }
    }

    fn call(&mut self) -> Result<Call, String> {
        let rest = &self.s[self.i..];
        let Some(after) = rest.strip_prefix("States.") else {
            return Err("expected 'States.' function call".into());
        };
        let end = after
            .find('(')
            .ok_or("expected '(' after the function name")?;
        let name = after[..end].trim().to_string();
        let Some(&(_, min, max)) = FUNCTIONS.iter().find(|(n, _, _)| *n == name) else {
            return Err(format!("unknown intrinsic function States.{name}"));
        };
        self.i += "States.".len() + end + 1;
        let mut args = Vec::new();
        self.ws();
        if self.s[self.i..].starts_with(')') {
            self.i += 1;
        } else {
            loop {
                self.ws();
                args.push(self.arg()?);
                self.ws();
                let rest = &self.s[self.i..];
                if rest.starts_with(',') {
                    self.i += 1;
                } else if rest.starts_with(')') {
                    self.i += 1;
                    break;
                } else {
                    return Err(format!("expected ',' or ')' at offset {}", self.i));
                }
            }
        }
        if args.len() < min || args.len() > max {
            return Err(format!(
                "States.{name} takes {} arguments, not {}",
                arity(min, max),
                args.len()
            ));
        }
        Ok(Call { name, args })
    }

    fn arg(&mut self) -> Result<Arg, String> {
        let rest = &self.s[self.i..];
        if rest.starts_with("States.") {
            return Ok(Arg::Call(self.call()?));
        }
        if rest.starts_with('\'') {
            return self.string();
        }
        if rest.starts_with('$') {
            // A path runs to the next top-level ',' or ')', outside brackets and quotes.
            let mut depth = 0i32;
            let mut quote: Option<char> = None;
            let mut end = rest.len();
            for (k, c) in rest.char_indices() {
                match (quote, c) {
                    (Some(q), c) if c == q => quote = None,
                    (Some(_), _) => {}
                    (None, '\'' | '"') => quote = Some(c),
                    (None, '[' | '(') => depth += 1,
                    (None, ']') => depth -= 1,
                    (None, ')') if depth > 0 => depth -= 1,
                    (None, ',' | ')') if depth == 0 => {
                        end = k;
                        break;
                    }
                    _ => {}
                }
            }
            let text = rest[..end].trim();
            self.i += end;
            return Path::parse(text).map(Arg::Path).map_err(|e| e.to_string());
        }
        let end = rest.find([',', ')']).unwrap_or(rest.len());
        let text = rest[..end].trim();
        self.i += end;
        match serde_json::from_str::<Value>(text) {
            Ok(v @ (Value::Number(_) | Value::Bool(_) | Value::Null)) => Ok(Arg::Literal(v)),
            _ => Err(format!("invalid argument {text:?}")),
        }
    }

    fn string(&mut self) -> Result<Arg, String> {
        self.i += 1;
        let mut val = String::new();
        let mut raw = String::new();
        let mut chars = self.s[self.i..].char_indices();
        while let Some((k, c)) = chars.next() {
            match c {
                '\'' => {
                    self.i += k + 1;
                    return Ok(Arg::Str(val, raw));
                }
                '\\' => {
                    let Some((_, n)) = chars.next() else { break };
                    match n {
                        '\'' | '\\' => {
                            val.push(n);
                            raw.push('\\');
                            raw.push(n);
                        }
                        '{' | '}' => {
                            val.push(n);
                            raw.push('\\');
                            raw.push(n);
                        }
                        other => {
                            return Err(format!(
                                "illegal escape sequence '\\{other}' in a string literal"
                            ));
                        }
                    }
                }
                c => {
                    val.push(c);
                    raw.push(c);
                }
            }
        }
        Err("unterminated string literal".into())
    }
}

fn arity(min: usize, max: usize) -> String {
    if min == max {
        min.to_string()
    } else if max == usize::MAX {
        format!("at least {min}")
    } else {
        format!("{min} to {max}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(src: &str, input: Value) -> Result<Value, Failure> {
        let call = Call::parse(src).unwrap();
        call.eval(&mut |p: &Path| p.select(&input).ok_or_else(|| Failure::runtime("missing")))
    }

    #[test]
    fn format_fills_placeholders_and_keeps_escaped_braces() {
        let v = eval(
            "States.Format('Hello {}, n={} \\{x\\}', $.name, $.n)",
            json!({"name": "Ann", "n": 3}),
        )
        .unwrap();
        assert_eq!(v, json!("Hello Ann, n=3 {x}"));
        assert!(eval("States.Format('{} {}', $.n)", json!({"n": 1})).is_err());
    }

    #[test]
    fn json_string_round_trip() {
        assert_eq!(
            eval("States.StringToJson($.s)", json!({"s": "{\"a\":1}"})).unwrap(),
            json!({"a": 1})
        );
        assert_eq!(
            eval("States.JsonToString($.o)", json!({"o": {"a": 1}})).unwrap(),
            json!("{\"a\":1}")
        );
    }

    #[test]
    fn arrays() {
        let input = json!({"a": [1, 2, 3, 4, 5, 1]});
        assert_eq!(
            eval("States.Array(1, 'x', $.a[0])", input.clone()).unwrap(),
            json!([1, "x", 1])
        );
        assert_eq!(
            eval("States.ArrayPartition($.a, 4)", input.clone()).unwrap(),
            json!([[1, 2, 3, 4], [5, 1]])
        );
        assert_eq!(
            eval("States.ArrayContains($.a, 5)", input.clone()).unwrap(),
            json!(true)
        );
        assert_eq!(
            eval("States.ArrayRange(1, 9, 2)", input.clone()).unwrap(),
            json!([1, 3, 5, 7, 9])
        );
        assert_eq!(
            eval("States.ArrayGetItem($.a, 1)", input.clone()).unwrap(),
            json!(2)
        );
        assert_eq!(
            eval("States.ArrayLength($.a)", input.clone()).unwrap(),
            json!(6)
        );
        assert_eq!(
            eval("States.ArrayUnique($.a)", input.clone()).unwrap(),
            json!([1, 2, 3, 4, 5])
        );
        assert!(eval("States.ArrayGetItem($.a, 10)", input).is_err());
    }

    #[test]
    fn encoding_and_hashing() {
        assert_eq!(
            eval("States.Base64Encode('Data to encode')", json!({})).unwrap(),
            json!("RGF0YSB0byBlbmNvZGU=")
        );
        assert_eq!(
            eval("States.Base64Decode('RGF0YSB0byBlbmNvZGU=')", json!({})).unwrap(),
            json!("Data to encode")
        );
        assert_eq!(
            eval("States.Hash('input data', 'MD5')", json!({})).unwrap(),
            json!("812f45842bc6d66ee14572ce20db8e86")
        );
        assert_eq!(
            eval("States.Hash('input data', 'SHA-1')", json!({})).unwrap(),
            json!("aaff4a450a104cd177d28d18d74485e8cae074b7")
        );
        assert!(eval("States.Hash('x', 'CRC')", json!({})).is_err());
    }

    #[test]
    fn math_merge_split_uuid() {
        assert_eq!(
            eval("States.MathAdd($.n, -1)", json!({"n": 5})).unwrap(),
            json!(4)
        );
        assert_eq!(
            eval("States.MathAdd(1.49, 1.5)", json!({})).unwrap(),
            json!(3)
        );
        assert_eq!(
            eval("States.MathAdd(-1.5, -1.51)", json!({})).unwrap(),
            json!(-3)
        );
        let r = eval("States.MathRandom(1, 10)", json!({}))
            .unwrap()
            .as_i64()
            .unwrap();
        assert!((1..10).contains(&r));
        assert_eq!(
            eval(
                "States.JsonMerge($.a, $.b, false)",
                json!({"a": {"x": 1, "y": 1}, "b": {"y": 2}})
            )
            .unwrap(),
            json!({"x": 1, "y": 2})
        );
        assert_eq!(
            eval("States.StringSplit('a,b,,c', ',')", json!({})).unwrap(),
            json!(["a", "b", "c"])
        );
        assert_eq!(
            eval("States.UUID()", json!({}))
                .unwrap()
                .as_str()
                .unwrap()
                .len(),
            36
        );
    }

    #[test]
    fn nested_calls_and_parse_errors() {
        assert_eq!(
            eval(
                "States.ArrayGetItem(States.StringSplit($.s, '-'), States.MathAdd(1, -1))",
                json!({"s": "a-b"})
            )
            .unwrap(),
            json!("a")
        );
        assert!(Call::parse("States.Nope(1)").is_err());
        assert!(Call::parse("States.Format('a \\\"b\\\"')").is_err());
        assert!(Call::parse("States.MathAdd(1)").is_err());
    }
}
