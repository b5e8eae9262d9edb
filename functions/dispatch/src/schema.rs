//! What a caller may put in a workflow's input, per workflow, and the input dispatch builds from it.
//!
//! A caller's `input` is checked field by field against the workflow's [`WorkflowSchema`]: a field the
//! schema does not list is refused (400, naming the field and what the workflow takes), and so is a value of
//! the wrong type or size. The fields that decide *where* a workflow acts and *who* is recorded as acting —
//! `environment` / `environments`, `actor`, `github`, an alarm event's `detail-type` and `detail` — are never
//! caller fields: dispatch sets them from the request's checked `environment` and the verified token, so a
//! rule that grants staging cannot be talked into prod through the input.

use serde_json::{Map, Value, json};
use thiserror::Error;

/// How a workflow's input names the environment it acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvironmentField {
    /// `{"environment": "<env>"}` (provision, rollback, backup, dr-drill).
    One,
    /// `{"environments": ["<env>"]}` (the sweeps: drift, health-sweep, and fleet runs), so a dispatched sweep covers the
    /// one environment the policy allowed, not every environment.
    List,
}

/// A caller field's type and limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// A string of `1..=max` characters, each accepted by `allowed`.
    Text {
        /// The most characters.
        max: usize,
        /// Which characters it may hold, said in the error.
        charset: Charset,
    },
    /// One of a fixed set of strings.
    OneOf(&'static [&'static str]),
}

/// The characters a text field may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    /// Printable text and spaces, no control characters (a reason a person writes).
    Prose,
    /// An AWS resource identifier: letters, digits and `-`.
    Identifier,
}

impl Charset {
    fn allows(self, c: char) -> bool {
        match self {
            Charset::Prose => !c.is_control(),
            Charset::Identifier => c.is_ascii_alphanumeric() || c == '-',
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Charset::Prose => "text without control characters",
            Charset::Identifier => "letters, digits and '-'",
        }
    }
}

/// One field a caller may set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    /// Its name in `input`.
    pub name: &'static str,
    /// Its type and limits.
    pub kind: FieldKind,
    /// Whether the workflow needs it.
    pub required: bool,
}

/// What a workflow takes from a caller, and how dispatch fills in the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkflowSchema {
    /// The workflow, e.g. `provision`.
    pub workflow: &'static str,
    /// The fields a caller may set.
    pub fields: &'static [FieldSpec],
    /// How the environment goes into the input.
    pub environment: EnvironmentField,
    /// Whether the workflow records an `actor` (provision and rollback do; dispatch sets it to the token's
    /// subject).
    pub actor: bool,
}

/// Fields only dispatch sets, with why; a caller sending one gets this reason back.
pub const RESERVED: [(&str, &str); 6] = [
    (
        "environment",
        "is set by dispatch from the request's `environment`; leave it out",
    ),
    (
        "environments",
        "is set by dispatch from the request's `environment`; leave it out",
    ),
    (
        "github",
        "is set by dispatch from the verified token; leave it out",
    ),
    (
        "actor",
        "is set by dispatch from the verified token (who acts is the job's subject); leave it out",
    ),
    (
        "detail-type",
        "alarm events reach rollback from EventBridge only; ask for {\"reason\"} instead",
    ),
    (
        "detail",
        "alarm events reach rollback from EventBridge only; ask for {\"reason\"} instead",
    ),
];

/// Every workflow dispatch can start, with its input.
pub const SCHEMAS: [WorkflowSchema; 7] = [
    WorkflowSchema {
        workflow: "provision",
        // The spec applied is the environment's latest: a caller pinning `spec_version` could apply any
        // version ever uploaded, including one the environment's owners replaced.
        fields: &[],
        environment: EnvironmentField::One,
        actor: true,
    },
    WorkflowSchema {
        workflow: "rollback",
        fields: &[FieldSpec {
            name: "reason",
            kind: FieldKind::Text {
                max: 500,
                charset: Charset::Prose,
            },
            required: true,
        }],
        environment: EnvironmentField::One,
        actor: true,
    },
    WorkflowSchema {
        workflow: "backup",
        fields: &[],
        environment: EnvironmentField::One,
        actor: false,
    },
    WorkflowSchema {
        workflow: "dr-drill",
        fields: &[
            FieldSpec {
                name: "mode",
                kind: FieldKind::OneOf(&["snapshot", "point-in-time"]),
                required: false,
            },
            // An RDS DB instance identifier: at most 63 letters, digits and hyphens. The drill checks it is
            // one of the environment's own instances.
            FieldSpec {
                name: "instance",
                kind: FieldKind::Text {
                    max: 63,
                    charset: Charset::Identifier,
                },
                required: false,
            },
            // An ElastiCache replication group id: at most 40 letters, digits and hyphens. The drill checks
            // it is one of the environment's own groups.
            FieldSpec {
                name: "replication_group",
                kind: FieldKind::Text {
                    max: 40,
                    charset: Charset::Identifier,
                },
                required: false,
            },
        ],
        environment: EnvironmentField::One,
        actor: false,
    },
    WorkflowSchema {
        workflow: "drift",
        fields: &[],
        environment: EnvironmentField::List,
        actor: false,
    },
    WorkflowSchema {
        workflow: "health-sweep",
        fields: &[],
        environment: EnvironmentField::List,
        actor: false,
    },
    // A fleet run dispatched by a caller covers the one environment the policy allowed, like the sweeps.
    WorkflowSchema {
        workflow: "fleet",
        fields: &[FieldSpec {
            name: "operation",
            kind: FieldKind::OneOf(&["backup", "drill-rotation"]),
            required: true,
        }],
        environment: EnvironmentField::List,
        actor: false,
    },
];

/// A caller's input does not fit the workflow (400).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SchemaError {
    /// No such workflow.
    #[error("unknown workflow; dispatch starts {known}")]
    UnknownWorkflow {
        /// The workflows there are.
        known: String,
    },
    /// A field only dispatch sets.
    #[error("{reason}")]
    Reserved {
        /// The field.
        field: String,
        /// Why and what to do.
        reason: &'static str,
    },
    /// A field the workflow does not take.
    #[error("not an input of {workflow}; it takes {takes}")]
    Unknown {
        /// The field.
        field: String,
        /// The workflow.
        workflow: &'static str,
        /// What it takes.
        takes: String,
    },
    /// A value of the wrong type or size.
    #[error("{reason}")]
    Value {
        /// The field.
        field: String,
        /// What is allowed.
        reason: String,
    },
    /// A field the workflow needs is missing.
    #[error("required by {workflow}")]
    Missing {
        /// The field.
        field: String,
        /// The workflow.
        workflow: &'static str,
    },
}

impl SchemaError {
    /// The field concerned, as `input.<name>` (`workflow` for an unknown workflow).
    pub fn field(&self) -> String {
        match self {
            SchemaError::UnknownWorkflow { .. } => "workflow".to_owned(),
            SchemaError::Reserved { field, .. }
            | SchemaError::Unknown { field, .. }
            | SchemaError::Value { field, .. }
            | SchemaError::Missing { field, .. } => format!("input.{field}"),
        }
    }
}

/// The schema of `workflow`.
pub fn schema(workflow: &str) -> Result<&'static WorkflowSchema, SchemaError> {
    SCHEMAS
        .iter()
        .find(|s| s.workflow == workflow)
        .ok_or_else(|| SchemaError::UnknownWorkflow {
            known: SCHEMAS
                .iter()
                .map(|s| s.workflow)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// A field name as it may appear in an error: bounded, printable.
fn shown(name: &str) -> String {
    let clean: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
    if clean.len() < name.len() {
        format!("{clean}...")
    } else {
        clean
    }
}

fn check_value(spec: &FieldSpec, value: &Value) -> Result<(), SchemaError> {
    let bad = |reason: String| SchemaError::Value {
        field: spec.name.to_owned(),
        reason,
    };
    match spec.kind {
        FieldKind::Text { max, charset } => {
            let text = value
                .as_str()
                .ok_or_else(|| bad(format!("must be a string: {}", charset.describe())))?;
            let count = text.chars().count();
            if count == 0 || count > max {
                return Err(bad(format!("must be 1 to {max} characters")));
            }
            if !text.chars().all(|c| charset.allows(c)) {
                return Err(bad(format!("may hold only {}", charset.describe())));
            }
            Ok(())
        }
        FieldKind::OneOf(choices) => match value.as_str() {
            Some(v) if choices.contains(&v) => Ok(()),
            _ => Err(bad(format!("must be one of {}", choices.join(", ")))),
        },
    }
}

/// Checks a caller's `input` against the schema of `workflow`; touches nothing. The checked caller fields.
pub fn check_input(
    workflow: &str,
    input: Option<&Map<String, Value>>,
) -> Result<Map<String, Value>, SchemaError> {
    let schema = schema(workflow)?;
    let empty = Map::new();
    let input = input.unwrap_or(&empty);
    for (key, value) in input {
        if let Some((_, reason)) = RESERVED.iter().find(|(name, _)| *name == key.as_str()) {
            return Err(SchemaError::Reserved {
                field: key.clone(),
                reason,
            });
        }
        let spec = schema
            .fields
            .iter()
            .find(|f| f.name == key.as_str())
            .ok_or_else(|| SchemaError::Unknown {
                field: shown(key),
                workflow: schema.workflow,
                takes: if schema.fields.is_empty() {
                    "no caller fields (send \"input\": {} or leave it out)".to_owned()
                } else {
                    schema
                        .fields
                        .iter()
                        .map(|f| format!("`{}`", f.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            })?;
        check_value(spec, value)?;
    }
    if let Some(missing) = schema
        .fields
        .iter()
        .find(|f| f.required && !input.contains_key(f.name))
    {
        return Err(SchemaError::Missing {
            field: missing.name.to_owned(),
            workflow: schema.workflow,
        });
    }
    Ok(input.clone())
}

/// The execution input: the checked caller fields, then what only dispatch sets — the environment (as the
/// workflow names it), the `actor` where the workflow records one, and the verified `github` context.
pub fn build_input(
    workflow: &str,
    environment: &str,
    caller: Map<String, Value>,
    actor: &str,
    github: Value,
) -> Result<Value, SchemaError> {
    let schema = schema(workflow)?;
    let mut input = caller;
    match schema.environment {
        EnvironmentField::One => {
            input.insert("environment".into(), json!(environment));
        }
        EnvironmentField::List => {
            input.insert("environments".into(), json!([environment]));
        }
    }
    if schema.actor {
        input.insert("actor".into(), json!(actor));
    }
    input.insert("github".into(), github);
    Ok(Value::Object(input))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field name any workflow knows of, reserved or not, plus ones none knows.
    fn every_field() -> Vec<&'static str> {
        let mut all: Vec<&str> = RESERVED.iter().map(|(n, _)| *n).collect();
        for s in &SCHEMAS {
            all.extend(s.fields.iter().map(|f| f.name));
        }
        all.extend([
            "spec_version",
            "source",
            "alarmName",
            "resources",
            "account",
            "region",
            "mode",
            "instance",
            "reason",
            "Environment",
        ]);
        all
    }

    /// Values that name prod in every shape an input could carry.
    fn prod_values() -> Vec<Value> {
        vec![
            json!("prod"),
            json!(["prod"]),
            json!({"environment": "prod"}),
            json!({"alarmName": "prod-5xx", "state": {"value": "ALARM"}}),
            json!("CloudWatch Alarm State Change"),
        ]
    }

    /// The environments an execution input would make its workflow act on.
    fn named_environments(input: &Value) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(e) = input.get("environment").and_then(Value::as_str) {
            out.push(e.to_owned());
        }
        if let Some(list) = input.get("environments").and_then(Value::as_array) {
            out.extend(list.iter().filter_map(Value::as_str).map(str::to_owned));
        }
        out
    }

    #[test]
    fn no_input_field_makes_any_workflow_act_on_another_environment() {
        for schema in &SCHEMAS {
            for field in every_field() {
                for value in prod_values() {
                    let mut input = Map::new();
                    // The required fields, valid, so that only `field` decides.
                    for f in schema.fields.iter().filter(|f| f.required) {
                        input.insert(f.name.into(), json!("routine"));
                    }
                    input.insert(field.into(), value.clone());
                    let Ok(caller) = check_input(schema.workflow, Some(&input)) else {
                        continue;
                    };
                    let built = build_input(
                        schema.workflow,
                        "staging",
                        caller,
                        "repo:acme/infra:environment:staging",
                        json!({}),
                    )
                    .unwrap();
                    assert_eq!(
                        named_environments(&built),
                        ["staging"],
                        "{} with {field}={value}: {built}",
                        schema.workflow
                    );
                    assert!(built.get("detail-type").is_none(), "{built}");
                    assert!(built.get("detail").is_none(), "{built}");
                    assert!(!built.to_string().contains("prod-5xx"), "{built}");
                }
            }
        }
    }

    #[test]
    fn identity_fields_and_pins_are_refused_by_name() {
        for (field, _) in RESERVED {
            let input = Map::from_iter([(field.to_owned(), json!("x"))]);
            let err = check_input("provision", Some(&input)).unwrap_err();
            assert_eq!(err.field(), format!("input.{field}"));
        }
        let input = Map::from_iter([("spec_version".to_owned(), json!("v1"))]);
        let err = check_input("provision", Some(&input)).unwrap_err();
        assert_eq!(err.field(), "input.spec_version");
        assert!(err.to_string().contains("no caller fields"), "{err}");
    }

    #[test]
    fn values_are_typed_and_bounded() {
        let ok = Map::from_iter([("reason".to_owned(), json!("error rate"))]);
        assert!(check_input("rollback", Some(&ok)).is_ok());
        let err = check_input("rollback", None).unwrap_err();
        assert_eq!(err.field(), "input.reason");
        for (workflow, field, value) in [
            ("rollback", "reason", json!("x".repeat(501))),
            ("rollback", "reason", json!(7)),
            ("rollback", "reason", json!("a\nb")),
            ("dr-drill", "mode", json!("restore-everything")),
            ("dr-drill", "instance", json!("db;drop")),
            ("dr-drill", "replication_group", json!("cache;flushall")),
        ] {
            let mut input = Map::from_iter([(field.to_owned(), value.clone())]);
            if workflow == "rollback" && field != "reason" {
                input.insert("reason".into(), json!("x"));
            }
            let err = check_input(workflow, Some(&input)).unwrap_err();
            assert_eq!(err.field(), format!("input.{field}"), "{value}");
        }
        assert!(matches!(
            check_input("deploy-everything", None),
            Err(SchemaError::UnknownWorkflow { .. })
        ));
    }

    #[test]
    fn dispatch_sets_the_environment_actor_and_context() {
        let built =
            build_input("provision", "staging", Map::new(), "sub", json!({"a": 1})).unwrap();
        assert_eq!(
            built,
            json!({"environment": "staging", "actor": "sub", "github": {"a": 1}})
        );
        let built = build_input("drift", "staging", Map::new(), "sub", json!({})).unwrap();
        assert_eq!(built, json!({"environments": ["staging"], "github": {}}));
    }
}
