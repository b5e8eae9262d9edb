//! A spec's shape, checked as a person would want it: every problem at once, each once, with its line and
//! what is allowed, in the spec's terms (never a Rust type name).
//!
//! serde stops at the first problem, so the document is read as YAML first, then deserialized again and
//! again: after each problem the offending node is set aside (an unknown field renamed to the field it
//! misspells, or dropped; a wrong value replaced by one of the right kind) so the next problem shows. Lines
//! come from the text itself: a probe walks the document to the problem's path and fails there, and the
//! YAML reader says where it was.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_yaml_ng::{Mapping, Number, Value};

use super::environment::EnvironmentSpec;
use super::error::{Problem, SpecError};

/// Enough for any spec a person writes; a document this broken is reported as far as it was read.
const MOST: usize = 50;

/// One step of a path: a mapping's key or a list's index.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// The path of a field as the spec's errors show it: `rds[0].instance_class`.
fn shown(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(k) if out.is_empty() => out.push_str(k),
            Step::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// The first shape problem of `doc`, if any: where, and serde's message.
fn first_problem(doc: &Value) -> Result<EnvironmentSpec, (Vec<Step>, String)> {
    serde_path_to_error::deserialize::<_, EnvironmentSpec>(doc.clone()).map_err(|err| {
        let path = err
            .path()
            .iter()
            .filter_map(|segment| match segment {
                serde_path_to_error::Segment::Seq { index } => Some(Step::Index(*index)),
                serde_path_to_error::Segment::Map { key } => Some(Step::Key(key.clone())),
                serde_path_to_error::Segment::Enum { .. }
                | serde_path_to_error::Segment::Unknown => None,
            })
            .collect();
        (path, err.into_inner().to_string())
    })
}

/// Parses `yaml` into the spec's shape, or every shape problem it has.
pub(super) fn read(yaml: &str) -> Result<EnvironmentSpec, SpecError> {
    let mut doc: Value =
        serde_yaml_ng::from_str(yaml).map_err(|e| SpecError::Syntax(e.to_string()))?;
    let mut problems: Vec<Problem> = Vec::new();
    let mut renames: Vec<(Vec<Step>, Step)> = Vec::new();
    for _ in 0..MOST {
        let (path, message) = match first_problem(&doc) {
            Ok(spec) if problems.is_empty() => return Ok(spec),
            Ok(_) => break,
            Err(problem) => problem,
        };
        if path.is_empty() {
            // The document as a whole is not a mapping of fields: nothing below it can be read.
            return Err(SpecError::Syntax(format!(
                "the document must be a mapping of the spec's fields (environment, rds, ...): {}",
                humanize(&message, None)
            )));
        }
        let repair = repair(&mut doc, path, &message);
        if let Some(guess) = &repair.renamed_to {
            // Under a renamed key, the text still has the name the person wrote.
            let mut renamed = repair.field.clone();
            if let Some(written) = renamed.pop() {
                renamed.push(Step::Key(guess.clone()));
                renames.push((renamed, written));
            }
        }
        let line = locate(yaml, &as_written(&repair.field, &renames));
        let field = shown(&repair.field);
        if !problems.iter().any(|p| p.field == field) {
            problems.push(Problem {
                field,
                line,
                reason: repair.reason,
            });
        }
        if !repair.repaired {
            break;
        }
    }
    Err(in_document_order(problems))
}

/// The rules a parsed spec breaks (`EnvironmentSpec::problems`), each with its line in `yaml`, in the
/// document's order.
pub(super) fn with_lines(yaml: &str, broken: Vec<SpecError>) -> SpecError {
    let problems: Vec<Problem> = broken
        .into_iter()
        .map(|err| {
            let field = err.field().to_owned();
            let reason = match err {
                SpecError::Invalid { reason, .. } => reason,
                other => other.to_string(),
            };
            Problem {
                line: locate(yaml, &steps(&field)),
                field,
                reason,
            }
        })
        .collect();
    in_document_order(problems)
}

/// The problems in the document's order, as a person reads it (serde meets them in its own).
fn in_document_order(mut problems: Vec<Problem>) -> SpecError {
    problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
    SpecError::Problems(problems)
}

/// `rds[0].identifier` → its steps.
fn steps(field: &str) -> Vec<Step> {
    let mut out = Vec::new();
    for part in field.split('.') {
        let mut pieces = part.split('[');
        if let Some(key) = pieces.next().filter(|k| !k.is_empty()) {
            out.push(Step::Key(key.to_owned()));
        }
        for index in pieces {
            if let Ok(i) = index.trim_end_matches(']').parse() {
                out.push(Step::Index(i));
            }
        }
    }
    out
}

/// `path` as the text has it: a key renamed to the field it misspells keeps its written name.
fn as_written(path: &[Step], renames: &[(Vec<Step>, Step)]) -> Vec<Step> {
    let mut out = path.to_vec();
    for (renamed, written) in renames {
        if out.starts_with(renamed) {
            out[renamed.len() - 1] = written.clone();
        }
    }
    out
}

/// One problem as `repair` found it, and what it did to the document.
struct Repair {
    /// The field at fault.
    field: Vec<Step>,
    /// What is wrong, in the spec's terms.
    reason: String,
    /// Whether the node was set aside (else no further problem can be read).
    repaired: bool,
    /// The field an unknown key was renamed to, the one it misspells.
    renamed_to: Option<String>,
}

/// What the problem at `path` is, in the spec's terms; sets the node aside in `doc` so the next problem
/// shows.
fn repair(doc: &mut Value, mut path: Vec<Step>, message: &str) -> Repair {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (unknown, allowed) = unknown_field(rest);
        let parent = &path[..path.len().saturating_sub(1)];
        let guess = closest(&unknown, &allowed)
            .filter(|g| mapping_at(doc, parent).is_some_and(|m| !m.contains_key(g.as_str())));
        let allowed_text = if allowed.is_empty() {
            "none".to_owned()
        } else {
            allowed.join(", ")
        };
        let reason = match &guess {
            Some(g) => format!("unknown field: did you mean `{g}`? (allowed here: {allowed_text})"),
            None => format!("unknown field (allowed here: {allowed_text})"),
        };
        let repaired = mapping_at(doc, parent).is_some_and(|m| match m.remove(unknown.as_str()) {
            // Renamed to the field it misspells, so that field's value is checked too and it is not
            // reported missing.
            Some(value) => {
                if let Some(g) = &guess {
                    m.insert(Value::String(g.clone()), value);
                }
                true
            }
            None => false,
        });
        return Repair {
            field: path,
            reason,
            renamed_to: guess.filter(|_| repaired),
            repaired,
        };
    }
    let reason = match message.strip_prefix("missing field `") {
        Some(rest) => {
            path.push(Step::Key(
                rest.split('`').next().unwrap_or_default().to_owned(),
            ));
            "required, and missing".to_owned()
        }
        None => humanize(message, path.last()),
    };
    let repaired = fill(doc, &path);
    Repair {
        field: path,
        reason,
        repaired,
        renamed_to: None,
    }
}

/// `X`, expected one of `a`, `b`` → ("X", ["a", "b"]).
fn unknown_field(rest: &str) -> (String, Vec<String>) {
    let (unknown, tail) = rest.split_once('`').unwrap_or((rest, ""));
    let allowed = tail
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    (unknown.to_owned(), allowed)
}

/// The allowed name `unknown` most likely misspells: at most two edits away, or one extends the other.
fn closest(unknown: &str, allowed: &[String]) -> Option<String> {
    allowed
        .iter()
        .map(|a| (edits(unknown, a), a))
        .filter(|(d, a)| *d <= 2 || a.starts_with(unknown) || unknown.starts_with(a.as_str()))
        .min_by_key(|(d, _)| *d)
        .map(|(_, a)| a.clone())
}

/// Levenshtein distance.
fn edits(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let here = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(here + 1);
            prev = here;
        }
    }
    row[b.len()]
}

/// The node at `path`, mutably.
fn node_at<'a>(doc: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    path.iter().try_fold(doc, |node, step| match (step, node) {
        (Step::Key(k), Value::Mapping(m)) => m.get_mut(k.as_str()),
        (Step::Index(i), Value::Sequence(s)) => s.get_mut(*i),
        _ => None,
    })
}

fn mapping_at<'a>(doc: &'a mut Value, path: &[Step]) -> Option<&'a mut Mapping> {
    match node_at(doc, path) {
        Some(Value::Mapping(m)) => Some(m),
        _ => None,
    }
}

/// Sets the node at `path` aside: dropped when the field is optional, else replaced by the first value of
/// another kind that serde takes there. True when the problem at `path` is gone.
fn fill(doc: &mut Value, path: &[Step]) -> bool {
    let Some((last, parent)) = path.split_last() else {
        return false;
    };
    let gone = |doc: &Value| match first_problem(doc) {
        Ok(_) => true,
        Err((at, message)) => {
            at != path
                && !(at == parent
                    && matches!(last, Step::Key(k) if message.contains(&format!("missing field `{k}`"))))
        }
    };
    if let Step::Key(k) = last {
        let mut trial = doc.clone();
        if let Some(m) = mapping_at(&mut trial, parent)
            && m.remove(k.as_str()).is_some()
            && gone(&trial)
        {
            *doc = trial;
            return true;
        }
    }
    let candidates = [
        Value::String("x".into()),
        Value::Number(Number::from(20)),
        Value::Bool(false),
        Value::Sequence(Vec::new()),
        Value::Mapping(Mapping::new()),
    ];
    for candidate in candidates {
        let mut trial = doc.clone();
        let placed = match (last, node_at(&mut trial, parent)) {
            (Step::Key(k), Some(Value::Mapping(m))) => {
                m.insert(Value::String(k.clone()), candidate);
                true
            }
            (Step::Index(i), Some(Value::Sequence(s))) if *i < s.len() => {
                s[*i] = candidate;
                true
            }
            _ => false,
        };
        if placed && gone(&trial) {
            *doc = trial;
            return true;
        }
    }
    false
}

/// serde's message in the spec's terms: what was found, and what the field takes.
fn humanize(message: &str, field: Option<&Step>) -> String {
    let (found, expected) = match message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))
        .and_then(|m| m.split_once(", expected "))
    {
        Some(parts) => parts,
        None => {
            if let Some(rest) = message.strip_prefix("unknown variant `") {
                let (value, allowed) = unknown_field(rest);
                return format!(
                    "`{value}` is not allowed: use one of {}",
                    allowed.join(", ")
                );
            }
            return words(message);
        }
    };
    let allowed = match field {
        Some(Step::Key(k)) => allowed_for(k),
        _ => None,
    }
    .unwrap_or_else(|| words(expected));
    format!("{} is not allowed: expected {allowed}", found_text(found))
}

/// What the fields whose ranges people ask about take, from the ranges `validate.rs` checks.
fn allowed_for(field: &str) -> Option<String> {
    use super::validate::{BACKUP_RETENTION_DAYS, HTTP_STATUS, STORAGE_GB, TIMEOUT_MS};
    Some(match field {
        "allocated_storage_gb" => format!(
            "a whole number of GiB from {} to {}",
            STORAGE_GB.start(),
            STORAGE_GB.end()
        ),
        "backup_retention_days" => format!(
            "a whole number of days from {} to {}",
            BACKUP_RETENTION_DAYS.start(),
            BACKUP_RETENTION_DAYS.end()
        ),
        "timeout_ms" => format!(
            "a whole number of milliseconds from {} to {}",
            TIMEOUT_MS.start(),
            TIMEOUT_MS.end()
        ),
        "expect_status" => format!(
            "an HTTP status code from {} to {}",
            HTTP_STATUS.start(),
            HTTP_STATUS.end()
        ),
        "retention_days" => "a whole number of days, 1 or more".to_owned(),
        "keep_last" => "a whole number, 1 or more".to_owned(),
        "min" | "max" | "desired" => "a whole number of nodes, 0 or more".to_owned(),
        _ => return None,
    })
}

/// serde's rendering of what it found, in plain words.
fn found_text(found: &str) -> String {
    for prefix in ["integer ", "floating point ", "boolean ", "string "] {
        if let Some(value) = found.strip_prefix(prefix) {
            return value.trim_matches('`').to_owned();
        }
    }
    match found {
        "map" => "a mapping".to_owned(),
        "sequence" => "a list".to_owned(),
        "unit value" => "an empty value".to_owned(),
        other => other.to_owned(),
    }
}

/// serde's names for what a field takes, in the spec's terms.
fn words(expected: &str) -> String {
    let out = expected
        .replace("a sequence", "a list")
        .replace("a boolean", "true or false")
        .replace("a string", "text")
        .replace("a map", "a mapping");
    let numbers = [
        ("u8", "a whole number from 0 to 255"),
        ("u16", "a whole number from 0 to 65535"),
        ("u32", "a whole number, 0 or more"),
        ("u64", "a whole number, 0 or more"),
        ("usize", "a whole number, 0 or more"),
        ("i32", "a whole number"),
        ("i64", "a whole number"),
        ("f32", "a number"),
        ("f64", "a number"),
    ];
    let trimmed = out.trim();
    if let Some((_, said)) = numbers.iter().find(|(rust, _)| *rust == trimmed) {
        return (*said).to_owned();
    }
    if let Some(name) = trimmed.strip_prefix("struct ") {
        return format!("a mapping of {} fields", words_of(name));
    }
    out
}

/// `RdsSpec` → `rds`: a type's name as the spec's section.
fn words_of(name: &str) -> String {
    name.trim_end_matches("Spec")
        .trim_end_matches("Policy")
        .to_lowercase()
}

/// The line (1-based) of the node at `path` in `yaml`, or of its nearest ancestor the text has.
fn locate(yaml: &str, path: &[Step]) -> Option<usize> {
    (0..=path.len()).rev().find_map(|n| {
        let de = serde_yaml_ng::Deserializer::from_str(yaml);
        match Probe(&path[..n]).deserialize(de) {
            Err(e) if e.to_string().contains(FOUND) => e.location().map(|l| l.line()),
            _ => None,
        }
    })
}

/// The probe's own error: where it stopped is where the node is.
const FOUND: &str = "opsplane-probe-found";

/// Walks the document along a path and fails on the node at its end, from inside that node's own reading,
/// so that the YAML reader marks the error with the node's position (an error raised by a mapping's visitor
/// would carry the mapping's).
struct Probe<'p>(&'p [Step]);

impl<'de> DeserializeSeed<'de> for Probe<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        if self.0.is_empty() {
            return de.deserialize_any(Fail);
        }
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Probe<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (want, rest) = match self.0.split_first() {
            Some((Step::Key(k), rest)) => (Some(k.as_str()), rest),
            _ => (None, &[][..]),
        };
        let key = KeyProbe {
            want,
            last: rest.is_empty(),
        };
        while let Some(hit) = map.next_key_seed(key)? {
            if hit {
                map.next_value_seed(Probe(rest))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        loop {
            let found = match self.0.first() {
                Some(Step::Index(want)) if *want == i => {
                    seq.next_element_seed(Probe(&self.0[1..]))?
                }
                _ => seq.next_element::<IgnoredAny>()?.map(|_| ()),
            };
            if found.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// A mapping's key: whether it is the one wanted; fails on it when the path ends there (the key's line is
/// the field's, also when its value starts on the next line).
#[derive(Clone, Copy)]
struct KeyProbe<'p> {
    want: Option<&'p str>,
    last: bool,
}

impl<'de> DeserializeSeed<'de> for KeyProbe<'_> {
    type Value = bool;

    fn deserialize<D: de::Deserializer<'de>>(self, de: D) -> Result<bool, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeyProbe<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
        match self.want {
            Some(want) if want == key && self.last => Err(E::custom(FOUND)),
            Some(want) => Ok(want == key),
            None => Ok(false),
        }
    }

    fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }
}

/// Fails on whatever node it is given.
struct Fail;

impl<'de> Visitor<'de> for Fail {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the node the probe looks for")
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(FOUND))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(FOUND))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(E::custom(FOUND))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(E::custom(FOUND))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(E::custom(FOUND))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(E::custom(FOUND))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(E::custom(FOUND))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom(FOUND))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "environment: staging
rds:
  - identifier: staging-db
    engine: postgres
    engine_version: \"16.4\"
    instance_class: db.t4g.medium
    allocated_storage_gb: 100
    multi_az: true
";

    fn problems(yaml: &str) -> Vec<Problem> {
        match read(yaml) {
            Err(SpecError::Problems(p)) => p,
            other => panic!("expected problems, got {other:?}"),
        }
    }

    #[test]
    fn a_document_that_is_not_a_mapping_says_so() {
        for doc in ["", "- a\n- b\n", "just words"] {
            let err = read(doc).unwrap_err();
            assert!(matches!(err, SpecError::Syntax(_)), "{doc}: {err}");
            assert!(
                err.to_string().contains("mapping of the spec's fields"),
                "{err}"
            );
            assert_eq!(
                crate::domain::readable::rust_text(&err.to_string()),
                None,
                "{err}"
            );
        }
    }

    #[test]
    fn a_good_spec_reads() {
        assert_eq!(read(GOOD).unwrap().rds[0].instance_class, "db.t4g.medium");
    }

    #[test]
    fn three_problems_are_reported_at_once_each_once_with_its_line_in_the_specs_terms() {
        let bad = GOOD
            .replace("instance_class:", "instance_clas:")
            .replace("allocated_storage_gb: 100", "allocated_storage_gb: -5")
            .replace("multi_az: true", "multi_az: maybe");
        let found = problems(&bad);
        assert_eq!(found.len(), 3, "{found:#?}");
        assert_eq!(found[0].field, "rds[0].instance_clas");
        assert_eq!(found[0].line, Some(6));
        assert!(
            found[0].reason.contains("did you mean `instance_class`"),
            "{}",
            found[0].reason
        );
        assert_eq!(found[1].field, "rds[0].allocated_storage_gb");
        assert_eq!(found[1].line, Some(7));
        assert_eq!(
            found[1].reason,
            "-5 is not allowed: expected a whole number of GiB from 20 to 65536"
        );
        assert_eq!(found[2].field, "rds[0].multi_az");
        assert_eq!(found[2].line, Some(8));
        assert!(
            found[2].reason.contains("true or false"),
            "{}",
            found[2].reason
        );
        let all = SpecError::Problems(found).to_string();
        for rust in ["u32", "String", "Option", "struct ", "bool"] {
            assert!(!all.contains(rust), "{rust} in {all}");
        }
    }

    #[test]
    fn every_broken_rule_is_reported_with_its_line() {
        let bad = GOOD
            .replace("environment: staging", "environment: Staging")
            .replace("engine: postgres", "engine: mysql")
            .replace("allocated_storage_gb: 100", "allocated_storage_gb: 10");
        let spec = read(&bad).unwrap();
        let SpecError::Problems(found) = with_lines(&bad, spec.problems()) else {
            panic!("problems")
        };
        let at: Vec<(&str, Option<usize>)> =
            found.iter().map(|p| (p.field.as_str(), p.line)).collect();
        assert_eq!(
            at,
            [
                ("environment", Some(1)),
                ("rds[0].engine", Some(4)),
                ("rds[0].allocated_storage_gb", Some(7)),
            ]
        );
        assert!(
            found[2].reason.contains("20 to 65536"),
            "{}",
            found[2].reason
        );
    }

    #[test]
    fn a_missing_required_field_names_it_and_the_item_it_belongs_to() {
        let found = problems(&GOOD.replace("    engine: postgres\n", ""));
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].field, "rds[0].engine");
        assert_eq!(found[0].line, Some(3));
        assert_eq!(found[0].reason, "required, and missing");
    }

    #[test]
    fn an_unknown_section_far_from_any_field_lists_what_is_allowed() {
        let found = problems(&format!("{GOOD}backups:\n  keep_last: 3\n"));
        assert_eq!(found[0].field, "backups");
        assert_eq!(found[0].line, Some(9));
        assert!(
            found[0].reason.contains("did you mean `backup`"),
            "{}",
            found[0].reason
        );
        // What the section it meant lacks is shown too, at the line the person wrote.
        assert_eq!(found[1].field, "backup.retention_days");
        assert_eq!(found[1].line, Some(9));
    }
}
