//! JSONPath as Step Functions evaluates it (Jayway semantics): `$` for the state input, `$$` for the
//! context object, `$name` for a variable, then `.field`, `['field']`, `[n]`, `[*]`, `[a:b]`, `[a,b]`,
//! `..field`, `[?(@.x == 1)]` filters and the `.length()` function.
//!
//! A path without wildcards, slices, unions, filters or recursive descent is *definite*: it selects one
//! value or fails. Any other path yields the array of its matches, possibly empty, as Jayway does.

use std::fmt;

use serde_json::Value;

/// Where a path starts.
#[derive(Debug, Clone, PartialEq)]
pub enum Root {
    /// `$`: the current document (usually the state input).
    Input,
    /// `$$`: the context object.
    Context,
    /// `$name`: a workflow variable.
    Var(String),
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// `.name` or `['name']`.
    Field(String),
    /// `[n]`; a negative index counts from the end.
    Index(i64),
    /// `.*` or `[*]`.
    Wildcard,
    /// `[start:end:step]`.
    Slice(Option<i64>, Option<i64>, Option<i64>),
    /// `['a','b']` or `[0,2]`.
    Union(Vec<Step>),
    /// `..name`, `..*`, `..[n]`: the inner step applied at every depth.
    Descendant(Box<Step>),
    /// `[?(...)]`.
    Filter(Filter),
    /// `.length()`.
    Length,
}

/// A parsed path.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    /// Where it starts.
    pub root: Root,
    /// The steps after the root.
    pub steps: Vec<Step>,
    source: String,
}

/// A path that does not parse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid JSONPath {path:?}: {reason}")]
pub struct PathSyntaxError {
    /// The path as written.
    pub path: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A filter expression inside `[?( )]`.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `a && b`.
    And(Box<Filter>, Box<Filter>),
    /// `a || b`.
    Or(Box<Filter>, Box<Filter>),
    /// `!a`.
    Not(Box<Filter>),
    /// `left op right`.
    Cmp(Operand, CmpOp, Operand),
    /// `@.x` on its own: true when the path selects something.
    Exists(Operand),
}

/// One side of a filter comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// `@...`: relative to the current element.
    Current(Vec<Step>),
    /// `$...`: relative to the document root.
    Root(Vec<Step>),
    /// A JSON literal.
    Literal(Value),
}

/// A comparison operator in a filter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Path {
    /// Parses a path that starts with `$`, `$$` or `$name`.
    pub fn parse(src: &str) -> Result<Path, PathSyntaxError> {
        let err = |reason: &str| PathSyntaxError {
            path: src.to_string(),
            reason: reason.to_string(),
        };
        let s = src.trim();
        let Some(rest) = s.strip_prefix('$') else {
            return Err(err("a path starts with '$'"));
        };
        let (root, rest) = if let Some(r) = rest.strip_prefix('$') {
            (Root::Context, r)
        } else {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            if end == 0 {
                (Root::Input, rest)
            } else {
                (Root::Var(rest[..end].to_string()), &rest[end..])
            }
        };
        let mut p = Parser {
            s: rest.as_bytes(),
            src: rest,
            i: 0,
        };
        let steps = p.steps().map_err(|r| err(&r))?;
        if p.i != p.s.len() {
            return Err(err(&format!("unexpected character at offset {}", p.i)));
        }
        Ok(Path {
            root,
            steps,
            source: s.to_string(),
        })
    }

    /// True when the path selects at most one value (no wildcard, slice, union, filter or `..`).
    pub fn is_definite(&self) -> bool {
        steps_definite(&self.steps)
    }

    /// True when the path is a plain reference path (`$`, `.field`, `['field']`, `[n]`) usable as a
    /// `ResultPath`.
    pub fn is_reference(&self) -> bool {
        self.root == Root::Input
            && self
                .steps
                .iter()
                .all(|s| matches!(s, Step::Field(_) | Step::Index(_)))
    }

    /// Evaluates the path against `doc`. Returns `None` when a definite path selects nothing.
    pub fn select(&self, doc: &Value) -> Option<Value> {
        select_steps(&self.steps, doc, doc)
    }

    /// Sets `value` at this reference path inside `doc`, creating objects on the way as `ResultPath`
    /// does. Fails when a step crosses a value of the wrong type.
    pub fn assign(&self, doc: Value, value: Value) -> Result<Value, String> {
        if self.steps.is_empty() {
            return Ok(value);
        }
        let mut doc = doc;
        if !doc.is_object() && matches!(self.steps[0], Step::Field(_)) {
            return Err(format!(
                "Invalid path '{}': the input is not a JSON object",
                self.source
            ));
        }
        let mut cur = &mut doc;
        let n = self.steps.len();
        for (i, step) in self.steps.iter().enumerate() {
            let last = i + 1 == n;
            match step {
                Step::Field(name) => {
                    if !cur.is_object() {
                        if cur.is_null() {
                            *cur = Value::Object(Default::default());
                        } else {
                            return Err(format!(
                                "Invalid path '{}': field '{}' is not inside a JSON object",
                                self.source, name
                            ));
                        }
                    }
                    let obj = cur.as_object_mut().expect("checked above");
                    if last {
                        obj.insert(name.clone(), value);
                        return Ok(doc);
                    }
                    cur = obj
                        .entry(name.clone())
                        .or_insert_with(|| Value::Object(Default::default()));
                }
                Step::Index(idx) => {
                    let Some(arr) = cur.as_array_mut() else {
                        return Err(format!(
                            "Invalid path '{}': index {} is not inside an array",
                            self.source, idx
                        ));
                    };
                    let len = arr.len() as i64;
                    let at = if *idx < 0 { len + idx } else { *idx };
                    if at < 0 || at >= len {
                        return Err(format!(
                            "Invalid path '{}': index {} out of bounds",
                            self.source, idx
                        ));
                    }
                    if last {
                        arr[at as usize] = value;
                        return Ok(doc);
                    }
                    cur = &mut arr[at as usize];
                }
                _ => {
                    return Err(format!(
                        "Invalid path '{}': not a reference path",
                        self.source
                    ));
                }
            }
        }
        Ok(doc)
    }
}

fn steps_definite(steps: &[Step]) -> bool {
    steps
        .iter()
        .all(|s| matches!(s, Step::Field(_) | Step::Index(_) | Step::Length))
}

/// Applies `steps` to `doc`; `root` is what `$` means inside filters.
fn select_steps(steps: &[Step], doc: &Value, root: &Value) -> Option<Value> {
    if steps_definite(steps) {
        let mut cur = doc;
        for (i, step) in steps.iter().enumerate() {
            match step {
                Step::Field(name) => cur = cur.as_object()?.get(name)?,
                Step::Index(idx) => {
                    let arr = cur.as_array()?;
                    let at = if *idx < 0 {
                        arr.len() as i64 + idx
                    } else {
                        *idx
                    };
                    cur = arr.get(usize::try_from(at).ok()?)?;
                }
                Step::Length => {
                    let len = match cur {
                        Value::Array(a) => a.len(),
                        Value::Object(o) => o.len(),
                        Value::String(s) => s.chars().count(),
                        _ => return None,
                    };
                    if i + 1 != steps.len() {
                        return None;
                    }
                    return Some(Value::from(len));
                }
                _ => unreachable!("definite paths hold no other step"),
            }
        }
        return Some(cur.clone());
    }
    let mut current: Vec<&Value> = vec![doc];
    let mut length = false;
    for step in steps {
        if matches!(step, Step::Length) {
            length = true;
            continue;
        }
        let mut next = Vec::new();
        for v in current {
            apply(step, v, root, &mut next);
        }
        current = next;
    }
    if length {
        return Some(Value::from(current.len()));
    }
    Some(Value::Array(current.into_iter().cloned().collect()))
}

fn apply<'a>(step: &Step, v: &'a Value, root: &Value, out: &mut Vec<&'a Value>) {
    match step {
        Step::Field(name) => {
            if let Some(x) = v.as_object().and_then(|o| o.get(name)) {
                out.push(x);
            }
        }
        Step::Index(idx) => {
            if let Some(arr) = v.as_array() {
                let at = if *idx < 0 {
                    arr.len() as i64 + idx
                } else {
                    *idx
                };
                if let Some(x) = usize::try_from(at).ok().and_then(|i| arr.get(i)) {
                    out.push(x);
                }
            }
        }
        Step::Wildcard => match v {
            Value::Array(a) => out.extend(a.iter()),
            Value::Object(o) => out.extend(o.values()),
            _ => {}
        },
        Step::Slice(start, end, step) => {
            if let Some(arr) = v.as_array() {
                let len = arr.len() as i64;
                let norm = |x: i64| if x < 0 { (len + x).max(0) } else { x.min(len) };
                let s = start.map(norm).unwrap_or(0);
                let e = end.map(norm).unwrap_or(len);
                let st = step.unwrap_or(1).max(1);
                let mut i = s;
                while i < e {
                    out.push(&arr[i as usize]);
                    i += st;
                }
            }
        }
        Step::Union(items) => {
            for it in items {
                apply(it, v, root, out);
            }
        }
        Step::Descendant(inner) => descend(inner, v, root, out),
        Step::Filter(f) => match v {
            Value::Array(a) => out.extend(a.iter().filter(|x| filter_holds(f, x, root))),
            Value::Object(_) if filter_holds(f, v, root) => out.push(v),
            _ => {}
        },
        Step::Length => {}
    }
}

fn descend<'a>(inner: &Step, v: &'a Value, root: &Value, out: &mut Vec<&'a Value>) {
    apply(inner, v, root, out);
    match v {
        Value::Array(a) => a.iter().for_each(|x| descend(inner, x, root, out)),
        Value::Object(o) => o.values().for_each(|x| descend(inner, x, root, out)),
        _ => {}
    }
}

fn operand_value(op: &Operand, cur: &Value, root: &Value) -> Option<Value> {
    match op {
        Operand::Current(steps) => select_definite_or_none(steps, cur, root),
        Operand::Root(steps) => select_definite_or_none(steps, root, root),
        Operand::Literal(v) => Some(v.clone()),
    }
}

fn select_definite_or_none(steps: &[Step], doc: &Value, root: &Value) -> Option<Value> {
    let v = select_steps(steps, doc, root)?;
    if !steps_definite(steps)
        && let Value::Array(a) = &v
        && a.is_empty()
    {
        return None;
    }
    Some(v)
}

fn filter_holds(f: &Filter, cur: &Value, root: &Value) -> bool {
    match f {
        Filter::And(a, b) => filter_holds(a, cur, root) && filter_holds(b, cur, root),
        Filter::Or(a, b) => filter_holds(a, cur, root) || filter_holds(b, cur, root),
        Filter::Not(a) => !filter_holds(a, cur, root),
        Filter::Exists(op) => operand_value(op, cur, root).is_some(),
        Filter::Cmp(l, op, r) => {
            let (Some(l), Some(r)) = (operand_value(l, cur, root), operand_value(r, cur, root))
            else {
                return matches!(op, CmpOp::Ne);
            };
            compare(&l, *op, &r)
        }
    }
}

fn compare(l: &Value, op: CmpOp, r: &Value) -> bool {
    use std::cmp::Ordering;
    let ord = match (l, r) {
        (Value::Number(a), Value::Number(b)) => a.as_f64().partial_cmp(&b.as_f64()),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        _ => {
            return match op {
                CmpOp::Eq => l == r,
                CmpOp::Ne => l != r,
                _ => false,
            };
        }
    };
    let Some(ord) = ord else { return false };
    match op {
        CmpOp::Eq => ord == Ordering::Equal,
        CmpOp::Ne => ord != Ordering::Equal,
        CmpOp::Lt => ord == Ordering::Less,
        CmpOp::Le => ord != Ordering::Greater,
        CmpOp::Gt => ord == Ordering::Greater,
        CmpOp::Ge => ord != Ordering::Less,
    }
}

struct Parser<'a> {
    s: &'a [u8],
    src: &'a str,
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn steps(&mut self) -> Result<Vec<Step>, String> {
        let mut steps = Vec::new();
        while let Some(c) = self.peek() {
            match c {
                b'.' => {
                    self.i += 1;
                    if self.eat(b'.') {
                        let inner = if self.peek() == Some(b'[') {
                            self.i += 1;
                            self.bracket()?
                        } else if self.eat(b'*') {
                            Step::Wildcard
                        } else {
                            Step::Field(self.name()?)
                        };
                        steps.push(Step::Descendant(Box::new(inner)));
                    } else if self.eat(b'*') {
                        steps.push(Step::Wildcard);
                    } else if self.eat(b'[') {
                        // `$.[0]` and `$.[?(...)]`: a dot before a bracket, which the Jayway
                        // implementation Step Functions uses accepts as the bracket alone.
                        steps.push(self.bracket()?);
                    } else {
                        let name = self.name()?;
                        if name == "length" && self.s[self.i..].starts_with(b"()") {
                            self.i += 2;
                            steps.push(Step::Length);
                        } else {
                            steps.push(Step::Field(name));
                        }
                    }
                }
                b'[' => {
                    self.i += 1;
                    let step = self.bracket()?;
                    steps.push(step);
                }
                _ => break,
            }
        }
        Ok(steps)
    }

    fn name(&mut self) -> Result<String, String> {
        let start = self.i;
        while let Some(c) = self.peek() {
            if matches!(
                c,
                b'.' | b'['
                    | b']'
                    | b' '
                    | b'('
                    | b')'
                    | b'='
                    | b'!'
                    | b'<'
                    | b'>'
                    | b'&'
                    | b'|'
                    | b','
            ) {
                break;
            }
            self.i += 1;
        }
        if start == self.i {
            return Err(format!("empty field name at offset {start}"));
        }
        Ok(self.src[start..self.i].to_string())
    }

    fn int(&mut self) -> Option<i64> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        if self.i == start {
            return None;
        }
        match self.src[start..self.i].parse() {
            Ok(v) => Some(v),
            Err(_) => {
                self.i = start;
                None
            }
        }
    }

    fn quoted(&mut self) -> Result<String, String> {
        let q = self.peek().ok_or("unterminated string")?;
        self.i += 1;
        let mut out = String::new();
        loop {
            let rest = &self.src[self.i..];
            let mut chars = rest.chars();
            let c = chars.next().ok_or("unterminated string")?;
            self.i += c.len_utf8();
            if c as u32 == q as u32 {
                return Ok(out);
            }
            if c == '\\' && chars.clone().next().is_some_and(|n| n as u32 == q as u32) {
                // Only the quote itself is escaped; any other backslash is kept, as Jayway does.
                let n = chars.next().ok_or("unterminated escape")?;
                self.i += n.len_utf8();
                out.push(n);
            } else {
                out.push(c);
            }
        }
    }

    /// After `[`: parses through the closing `]`.
    fn bracket(&mut self) -> Result<Step, String> {
        self.ws();
        let step = match self.peek() {
            Some(b'*') => {
                self.i += 1;
                Step::Wildcard
            }
            Some(b'?') => {
                self.i += 1;
                self.ws();
                if !self.eat(b'(') {
                    return Err("expected '(' after '?'".into());
                }
                let f = self.filter_or()?;
                self.ws();
                if !self.eat(b')') {
                    return Err("expected ')' closing the filter".into());
                }
                Step::Filter(f)
            }
            Some(b'\'' | b'"') => {
                let mut names = vec![Step::Field(self.quoted()?)];
                self.ws();
                while self.eat(b',') {
                    self.ws();
                    names.push(Step::Field(self.quoted()?));
                    self.ws();
                }
                if names.len() == 1 {
                    names.pop().expect("one name")
                } else {
                    Step::Union(names)
                }
            }
            _ => {
                let first = self.int();
                self.ws();
                if self.eat(b':') {
                    self.ws();
                    let end = self.int();
                    let mut step = None;
                    if self.eat(b':') {
                        step = self.int();
                    }
                    Step::Slice(first, end, step)
                } else if let Some(first) = first {
                    let mut idx = vec![Step::Index(first)];
                    while self.eat(b',') {
                        self.ws();
                        idx.push(Step::Index(self.int().ok_or("expected an index")?));
                        self.ws();
                    }
                    if idx.len() == 1 {
                        idx.pop().expect("one index")
                    } else {
                        Step::Union(idx)
                    }
                } else {
                    return Err(format!(
                        "unexpected character in brackets at offset {}",
                        self.i
                    ));
                }
            }
        };
        self.ws();
        if !self.eat(b']') {
            return Err("expected ']'".into());
        }
        Ok(step)
    }

    fn filter_or(&mut self) -> Result<Filter, String> {
        self.filter_chain(b"||", Self::filter_and, Filter::Or)
    }

    fn filter_and(&mut self) -> Result<Filter, String> {
        self.filter_chain(b"&&", Self::filter_atom, Filter::And)
    }

    /// `operand (op operand)*`, joined left to right: `&&` binds tighter than `||` because `||`'s
    /// operands are `&&` chains.
    fn filter_chain(
        &mut self,
        op: &[u8],
        operand: fn(&mut Self) -> Result<Filter, String>,
        join: fn(Box<Filter>, Box<Filter>) -> Filter,
    ) -> Result<Filter, String> {
        let mut left = operand(self)?;
        loop {
            self.ws();
            if self.s[self.i..].starts_with(op) {
                self.i += op.len();
                let right = operand(self)?;
                left = join(Box::new(left), Box::new(right));
            } else {
                return Ok(left);
            }
        }
    }

    fn filter_atom(&mut self) -> Result<Filter, String> {
        self.ws();
        if self.eat(b'!') {
            return Ok(Filter::Not(Box::new(self.filter_atom()?)));
        }
        if self.eat(b'(') {
            let f = self.filter_or()?;
            self.ws();
            if !self.eat(b')') {
                return Err("expected ')'".into());
            }
            return Ok(f);
        }
        let left = self.operand()?;
        self.ws();
        let rest = &self.s[self.i..];
        let op = if rest.starts_with(b"==") {
            Some((CmpOp::Eq, 2))
        } else if rest.starts_with(b"!=") {
            Some((CmpOp::Ne, 2))
        } else if rest.starts_with(b"<=") {
            Some((CmpOp::Le, 2))
        } else if rest.starts_with(b">=") {
            Some((CmpOp::Ge, 2))
        } else if rest.starts_with(b"<") {
            Some((CmpOp::Lt, 1))
        } else if rest.starts_with(b">") {
            Some((CmpOp::Gt, 1))
        } else {
            None
        };
        match op {
            Some((op, n)) => {
                self.i += n;
                self.ws();
                let right = self.operand()?;
                Ok(Filter::Cmp(left, op, right))
            }
            None => Ok(Filter::Exists(left)),
        }
    }

    fn operand(&mut self) -> Result<Operand, String> {
        match self.peek() {
            Some(b'@') => {
                self.i += 1;
                Ok(Operand::Current(self.steps()?))
            }
            Some(b'$') => {
                self.i += 1;
                Ok(Operand::Root(self.steps()?))
            }
            Some(b'\'' | b'"') => Ok(Operand::Literal(Value::String(self.quoted()?))),
            _ => {
                let start = self.i;
                while let Some(c) = self.peek() {
                    if matches!(c, b' ' | b')' | b'=' | b'!' | b'<' | b'>' | b'&' | b'|') {
                        break;
                    }
                    self.i += 1;
                }
                let lit = &self.src[start..self.i];
                serde_json::from_str(lit)
                    .map(Operand::Literal)
                    .or_else(|_| {
                        // An unquoted word compares as a string, as Jayway's filters read it.
                        if !lit.is_empty()
                            && lit
                                .chars()
                                .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
                        {
                            Ok(Operand::Literal(Value::String(lit.to_string())))
                        } else {
                            Err(format!("invalid literal {lit:?} in filter"))
                        }
                    })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sel(p: &str, doc: Value) -> Option<Value> {
        Path::parse(p).unwrap().select(&doc)
    }

    #[test]
    fn root_and_fields() {
        let doc = json!({"a": {"b": 1}, "x-y": 2});
        assert_eq!(sel("$", doc.clone()), Some(doc.clone()));
        assert_eq!(sel("$.a.b", doc.clone()), Some(json!(1)));
        assert_eq!(sel("$['a']['b']", doc.clone()), Some(json!(1)));
        assert_eq!(sel("$.x-y", doc.clone()), Some(json!(2)));
        assert_eq!(sel("$.a.c", doc), None);
    }

    #[test]
    fn indexes_slices_and_wildcards() {
        let doc = json!({"items": [{"v": 1}, {"v": 2}, {"v": 3}]});
        assert_eq!(sel("$.items[0].v", doc.clone()), Some(json!(1)));
        assert_eq!(sel("$.items[-1].v", doc.clone()), Some(json!(3)));
        assert_eq!(sel("$.items[10]", doc.clone()), None);
        assert_eq!(sel("$.items[*].v", doc.clone()), Some(json!([1, 2, 3])));
        assert_eq!(sel("$.items[1:].v", doc.clone()), Some(json!([2, 3])));
        assert_eq!(sel("$.items[:1]", doc.clone()), Some(json!([{"v": 1}])));
        assert_eq!(sel("$.items[0,2].v", doc.clone()), Some(json!([1, 3])));
        assert_eq!(sel("$..v", doc.clone()), Some(json!([1, 2, 3])));
        assert_eq!(sel("$.items.length()", doc), Some(json!(3)));
    }

    #[test]
    fn filters() {
        let doc = json!({"users": [{"n": "a", "status": 0}, {"n": "b", "status": 1}, {"n": "c"}]});
        assert_eq!(
            sel("$.users[?(@.status == 0)].n", doc.clone()),
            Some(json!(["a"]))
        );
        assert_eq!(
            sel("$.users[?(@.status)].n", doc.clone()),
            Some(json!(["a", "b"]))
        );
        assert_eq!(
            sel("$.users[?(@.status > 0 || @.n == 'c')].n", doc),
            Some(json!(["b", "c"]))
        );
    }

    #[test]
    fn roots() {
        assert_eq!(Path::parse("$$.Execution.Id").unwrap().root, Root::Context);
        assert_eq!(Path::parse("$var.x").unwrap().root, Root::Var("var".into()));
        assert!(Path::parse("a.b").is_err());
        assert!(Path::parse("$.a[").is_err());
    }

    #[test]
    fn assign_creates_and_replaces() {
        let p = Path::parse("$.a.b").unwrap();
        assert_eq!(
            p.assign(json!({"x": 1}), json!(2)).unwrap(),
            json!({"x": 1, "a": {"b": 2}})
        );
        assert_eq!(
            Path::parse("$")
                .unwrap()
                .assign(json!(1), json!(2))
                .unwrap(),
            json!(2)
        );
        assert!(p.assign(json!({"a": 5}), json!(2)).is_err());
    }

    #[test]
    fn forms_aws_accepts_in_deployed_definitions() {
        let doc = json!({"items": [{"x": 1, "s": "active"}, {"x": -1, "s": "idle"}]});
        let items = &doc["items"];
        let p = Path::parse("$.[0]").unwrap();
        assert_eq!(p.select(items), Some(json!({"x": 1, "s": "active"})));
        let p = Path::parse("$.[?(@.x > 0)]").unwrap();
        assert_eq!(p.select(items), Some(json!([{"x": 1, "s": "active"}])));
        let p = Path::parse("$.items[?(@.s == active)].x").unwrap();
        assert_eq!(p.select(&doc), Some(json!([1])));
        assert!(Path::parse("$.items[?(@.s == a b)]").is_err());
    }
}
