//! Malformed inputs, generated: every workflow's (and the lock function's) input validation refuses them with
//! `InvalidInput` naming the field, before anything is touched.
//!
//! Each target is one row of [`targets`]: a valid input and the rules of its fields. The generator starts
//! from the valid input and breaks exactly one thing (a field's type, its value, its presence, an unknown
//! field, the whole input), so the field the error must name is known. A new workflow joins with one row.
//! The seed is printed and can be fixed with `OPSPLANE_INPUT_SEED` to replay a failure.

use opsplane_fn_backup::probe::ProbeSettings;
use opsplane_fn_lock::LockDeps;
use opsplane_statemachines::Status;
use serde_json::{Value, json};

use crate::backup::Plane;

/// What a field accepts.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// An environment's name that has a spec (`^[a-z][a-z0-9-]{0,31}$`, and known).
    Environment,
    /// An environment's name, well-formed (`^[a-z][a-z0-9-]{0,31}$`); whether it has a spec is not checked.
    EnvironmentName,
    /// One of these strings.
    OneOf(&'static [&'static str]),
    /// The name of one of the environment's RDS instances.
    Instance,
    /// A non-empty string of at most this many characters.
    Text(usize),
    /// A whole number in this range.
    Whole(u64, u64),
}

/// One field of a target's input.
#[derive(Debug, Clone, Copy)]
struct Field {
    name: &'static str,
    kind: Kind,
    /// Absent or null means "the default".
    optional: bool,
}

const fn required(name: &'static str, kind: Kind) -> Field {
    Field {
        name,
        kind,
        optional: false,
    }
}

const fn optional(name: &'static str, kind: Kind) -> Field {
    Field {
        name,
        kind,
        optional: true,
    }
}

/// How a target is invoked.
#[derive(Debug, Clone, Copy)]
enum Entry {
    /// A workflow on the local engine, by name; the error is the execution's.
    Workflow(&'static str),
    /// The lock function, called through its JSON boundary.
    LockFunction,
}

/// One input validation under test.
struct Target {
    entry: Entry,
    /// A valid input for environment `env` whose first RDS instance is `db`.
    valid: fn(env: &str, db: &str) -> Value,
    fields: Vec<Field>,
    /// Whether a field outside `fields` is refused (and named).
    refuses_unknown_fields: bool,
    /// The name the error gives a whole input that is not an object.
    whole: &'static str,
}

const HOLDER: &str = "arn:aws:states:us-east-1:123456789012:execution:backup:fuzz";
const MODES: &[&str] = &["snapshot", "point-in-time"];
const ACTIONS: &[&str] = &["acquire", "renew", "release"];

/// Every input validation, one row each (rollback, health-sweep and drift join here).
fn targets() -> Vec<Target> {
    vec![
        Target {
            entry: Entry::Workflow("backup"),
            valid: |env, _| json!({ "environment": env }),
            fields: vec![required("environment", Kind::Environment)],
            refuses_unknown_fields: true,
            whole: "input",
        },
        Target {
            entry: Entry::Workflow("dr-drill"),
            valid: |env, db| json!({ "environment": env, "mode": "snapshot", "instance": db }),
            fields: vec![
                required("environment", Kind::Environment),
                optional("mode", Kind::OneOf(MODES)),
                optional("instance", Kind::Instance),
            ],
            refuses_unknown_fields: true,
            whole: "input",
        },
        Target {
            entry: Entry::Workflow("provision"),
            valid: |env, _| json!({ "environment": env }),
            fields: vec![
                required("environment", Kind::Environment),
                optional("spec_version", Kind::Text(1024)),
            ],
            refuses_unknown_fields: true,
            whole: "input",
        },
        Target {
            entry: Entry::LockFunction,
            valid: |env, _| {
                json!({ "action": "acquire", "environment": env, "holder": HOLDER, "operation": "backup",
                        "lease_seconds": 900 })
            },
            fields: vec![
                required("action", Kind::OneOf(ACTIONS)),
                required("environment", Kind::EnvironmentName),
                required("holder", Kind::Text(2048)),
                required("operation", Kind::Text(64)),
                optional("lease_seconds", Kind::Whole(30, 43_200)),
            ],
            refuses_unknown_fields: false,
            whole: "input",
        },
        Target {
            entry: Entry::LockFunction,
            valid: |env, _| json!({ "action": "release", "environment": env, "holder": HOLDER, "token": 7 }),
            fields: vec![
                required("environment", Kind::EnvironmentName),
                required("holder", Kind::Text(2048)),
                required("token", Kind::Whole(1, u64::MAX)),
            ],
            refuses_unknown_fields: false,
            whole: "input",
        },
    ]
}

/// A small deterministic generator (the seed is printed with every failure).
struct Gen(fastrand::Rng);

impl Gen {
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.0.usize(..items.len())]
    }

    fn string(&mut self, len: usize) -> String {
        const ALPHABET: &[char] = &[
            'a', 'Z', '9', '-', '_', ' ', '!', '/', '.', '$', '\'', '"', '\\', 'é', '日', '\u{0}',
            '\n',
        ];
        (0..len).map(|_| *self.pick(ALPHABET)).collect()
    }

    /// A JSON value that is not a string.
    fn not_a_string(&mut self) -> Value {
        match self.0.u8(..5) {
            0 => Value::Null,
            1 => json!(self.0.bool()),
            2 => json!(self.0.i64(..)),
            3 => json!([self.string(3)]),
            _ => json!({ "value": self.string(3) }),
        }
    }

    /// A value `field` does not accept (never null for an optional field, whose null is its default).
    fn bad_value(&mut self, field: &Field) -> Value {
        let wrong_type = match field.kind {
            Kind::Whole(..) => match self.0.u8(..4) {
                0 => json!(self.string(2)),
                1 => json!(self.0.bool()),
                2 => json!(1.5),
                _ => json!([1]),
            },
            _ => loop {
                let v = self.not_a_string();
                if !(field.optional && v.is_null()) {
                    break v;
                }
            },
        };
        if self.0.bool() {
            return wrong_type;
        }
        match field.kind {
            Kind::Environment if self.0.u8(..5) == 0 => {
                // Well-formed, but no environment has this name.
                json!(format!("nosuch{}", self.0.u32(..)))
            }
            Kind::Environment | Kind::EnvironmentName => json!(match self.0.u8(..4) {
                0 => String::new(),
                1 => format!("Prod{}", self.0.u32(..)),
                2 => format!("9{}", self.string(4)),
                _ => "a".repeat(33 + self.0.usize(..10)),
            }),
            Kind::OneOf(allowed) => loop {
                let len = self.0.usize(0..12);
                let s = self.string(len);
                if !allowed.contains(&s.as_str()) {
                    break json!(s);
                }
            },
            // The fixture's instances are named `<env>-db`; a generated name never ends in `-db`.
            Kind::Instance => {
                let len = self.0.usize(0..12);
                json!(format!("{}x", self.string(len)))
            }
            Kind::Text(max) => match self.0.bool() {
                true => json!(""),
                false => json!("h".repeat(max + 1 + self.0.usize(..5))),
            },
            Kind::Whole(min, max) => match self.0.u8(..3) {
                0 if min > 0 => json!(self.0.u64(..min)),
                1 if max < u64::MAX => json!(max + 1 + self.0.u64(..1000)),
                _ => json!(-1 - self.0.i64(0..1000)),
            },
        }
    }
}

/// One broken input and the field its error must name.
fn mutate(g: &mut Gen, target: &Target, env: &str, db: &str) -> (Value, String) {
    let mut input = (target.valid)(env, db);
    let obj = input.as_object_mut().expect("valid inputs are objects");
    let removable: Vec<&Field> = target.fields.iter().filter(|f| !f.optional).collect();
    match g.0.u8(..10) {
        // The whole input is not an object.
        0 => {
            let whole = match g.0.u8(..4) {
                0 => json!([env]),
                1 => json!(env),
                2 => json!(g.0.i32(..)),
                _ => Value::Null,
            };
            (whole, target.whole.to_owned())
        }
        // A required field is missing.
        1 | 2 if !removable.is_empty() => {
            let field = g.pick(&removable);
            obj.remove(field.name);
            (input, field.name.to_owned())
        }
        // An unknown field.
        3 if target.refuses_unknown_fields => {
            let name = format!("x_{}", g.0.u32(..));
            obj.insert(name.clone(), json!(g.string(4)));
            (input, name)
        }
        // A field with a value it does not accept.
        _ => {
            let field = g.pick(&target.fields);
            obj.insert(field.name.to_owned(), g.bad_value(field));
            (input, field.name.to_owned())
        }
    }
}

/// Objects the workflows write; none may appear.
async fn written_objects(plane: &Plane) -> Vec<String> {
    let mut keys = Vec::new();
    for prefix in ["backups/", "reports/", "locks/"] {
        let out = plane
            .world
            .clients
            .s3
            .list_objects_v2()
            .bucket(&plane.world.config.bucket_name)
            .prefix(prefix)
            .send()
            .await
            .unwrap();
        keys.extend(
            out.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
    }
    keys
}

#[tokio::test]
async fn malformed_inputs_are_refused_naming_the_field_and_change_nothing() {
    let seed = std::env::var("OPSPLANE_INPUT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    let mut g = Gen(fastrand::Rng::with_seed(seed));
    let plane = Plane::new("drill.yaml", ProbeSettings::default()).await;
    let db = format!("{}-db", plane.env);
    let lock = LockDeps::new(plane.local.lock());
    const CASES_PER_TARGET: usize = 24;

    for target in targets() {
        // The valid input itself passes validation, so every refusal below is the mutation's doing.
        if let Entry::LockFunction = target.entry {
            let valid = (target.valid)(&plane.env, &db);
            if let Err(e) = opsplane_fn_lock::handle(&lock, valid.clone()).await {
                assert_ne!(e.name().as_str(), "InvalidInput", "{valid}: {e}");
            }
            let _ = plane
                .local
                .lock()
                .force_release(&plane.env, "test", "reset")
                .await;
        }
        for _ in 0..CASES_PER_TARGET {
            let (input, field) = mutate(&mut g, &target, &plane.env, &db);
            let context = format!("seed {seed}, {:?}, input {input}", target.entry);
            match target.entry {
                Entry::Workflow(workflow) => {
                    let run = plane.local.run(workflow, input.clone()).await.unwrap();
                    assert_eq!(run.status, Status::Failed, "{context}");
                    assert_eq!(
                        run.error.as_deref(),
                        Some("InvalidInput"),
                        "{context}: {:?}",
                        run.cause
                    );
                    let cause = run.cause.unwrap_or_default();
                    assert!(
                        cause.contains(&format!("`{field}`")),
                        "{context}: names `{field}`: {cause}"
                    );
                    let tasks = plane
                        .engine
                        .history(&run.execution_arn)
                        .unwrap()
                        .iter()
                        .filter(|e| e.event_type.ends_with("Scheduled"))
                        .filter(|e| e.details["resource"] != opsplane_local::plane::PUT_EVENTS)
                        .count();
                    // The outcome event's publish (`Notify*`) is not a handler of ours.
                    assert_eq!(tasks, 1, "{context}: only the validation ran");
                }
                Entry::LockFunction => {
                    let err = opsplane_fn_lock::handle(&lock, input.clone())
                        .await
                        .expect_err(&context);
                    assert_eq!(err.name().as_str(), "InvalidInput", "{context}: {err}");
                    match &err {
                        opsplane_shared::OpsError::InvalidInput { field: named, .. } => {
                            assert_eq!(named, &field, "{context}: {err}")
                        }
                        other => panic!("{context}: {other:?}"),
                    }
                }
            }
            // Nothing changed: no lock, no snapshot, no object written, no drill instance.
            assert!(
                plane
                    .local
                    .lock()
                    .status(&plane.env)
                    .await
                    .unwrap()
                    .is_none(),
                "{context}: a lock was taken"
            );
            assert!(
                plane.snapshots(None, &db).await.is_empty(),
                "{context}: a snapshot was taken"
            );
            assert_eq!(
                written_objects(&plane).await,
                Vec::<String>::new(),
                "{context}"
            );
        }
    }
    let instances = plane
        .world
        .clients
        .rds
        .describe_db_instances()
        .send()
        .await
        .unwrap();
    let ours: Vec<_> = instances
        .db_instances()
        .iter()
        .filter_map(|i| i.db_instance_identifier())
        .filter(|id| id.starts_with(plane.env.as_str()))
        .collect();
    assert_eq!(ours, [db.as_str()], "seed {seed}: no instance was restored");
}

#[test]
fn the_generator_never_produces_an_accepted_value() {
    // The properties above rely on every mutation being invalid; check the value generator on its own.
    let mut g = Gen(fastrand::Rng::with_seed(7));
    for _ in 0..2000 {
        for target in targets() {
            for field in &target.fields {
                let v = g.bad_value(field);
                let accepted = match field.kind {
                    Kind::Environment => v.as_str().is_some_and(|s| {
                        opsplane_shared::lock::validate_environment(s).is_ok()
                            && !s.starts_with("nosuch")
                    }),
                    Kind::EnvironmentName => v
                        .as_str()
                        .is_some_and(|s| opsplane_shared::lock::validate_environment(s).is_ok()),
                    Kind::OneOf(allowed) => v.as_str().is_some_and(|s| allowed.contains(&s)),
                    Kind::Instance => v.as_str().is_some_and(|s| s.ends_with("-db")),
                    Kind::Text(max) => v
                        .as_str()
                        .is_some_and(|s| !s.trim().is_empty() && s.len() <= max),
                    Kind::Whole(min, max) => v.as_u64().is_some_and(|n| (min..=max).contains(&n)),
                };
                assert!(!accepted, "{}: {v}", field.name);
                assert!(
                    !(field.optional && v.is_null()),
                    "{}: null is a default",
                    field.name
                );
            }
        }
    }
}
