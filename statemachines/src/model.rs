//! The typed model of a definition, and the validation that builds it: what Step Functions rejects at
//! `CreateStateMachine` is rejected here, with the state and field named.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::error::ValidationError;
use crate::intrinsic::{self, Call};
use crate::path::Path;

/// The expression language of a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryLanguage {
    /// `JSONPath` (the default): paths, `Parameters`, intrinsic functions.
    JsonPath,
    /// `JSONata`: `Arguments`, `Output`, `{% %}` expressions.
    Jsonata,
}

/// A value built at run time from a template (`Parameters`, `ResultSelector`, `ItemSelector`, `Assign`,
/// `Arguments`, `Output`).
#[derive(Debug, Clone, PartialEq)]
pub enum Template {
    /// Copied as is.
    Literal(Value),
    /// An object whose fields are templates.
    Object(Vec<(String, Template)>),
    /// An array whose items are templates.
    Array(Vec<Template>),
    /// `"key.$": "$..."`: a path.
    Path(Path),
    /// `"key.$": "States.X(...)"`: an intrinsic call.
    Call(Call),
    /// `"{% expr %}"`: a JSONata expression.
    Jsonata(Arc<str>),
}

/// A `JSONPath` path field that may be `null` (meaning: discard / empty object).
#[derive(Debug, Clone, PartialEq)]
pub enum PathField {
    /// The field is absent: `$`.
    Default,
    /// The field is `null`.
    Null,
    /// A path.
    Path(Path),
}

/// A `Retry` rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Retrier {
    /// Error names it matches.
    pub error_equals: Vec<String>,
    /// First interval, seconds (default 1).
    pub interval_seconds: f64,
    /// Retries before giving up (default 3).
    pub max_attempts: u32,
    /// Multiplier per retry (default 2.0).
    pub backoff_rate: f64,
    /// Cap on one interval, seconds.
    pub max_delay_seconds: Option<f64>,
    /// `FULL` jitter draws the interval uniformly in `[0, interval]`.
    pub jitter_full: bool,
}

/// A `Catch` rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Catcher {
    /// Error names it matches.
    pub error_equals: Vec<String>,
    /// The state it goes to.
    pub next: usize,
    /// Where the error output goes (`JSONPath`; default `$`).
    pub result_path: PathField,
    /// `Assign` of the catcher.
    pub assign: Option<Template>,
    /// `Output` of the catcher (`JSONata`).
    pub output: Option<Template>,
}

/// A number given literally, by a `JSONPath` path, or by a `JSONata` expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Dynamic {
    /// A literal value.
    Value(Value),
    /// A path (`...Path` fields).
    Path(Path),
    /// A `{% %}` expression.
    Jsonata(Arc<str>),
    /// An intrinsic call in a `...Path` field (Fail's `ErrorPath`/`CausePath` accept one).
    Call(Box<Call>),
}

/// A `Task` state's own fields.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSpec {
    /// The resource ARN, substitutions applied.
    pub resource: String,
    /// `TimeoutSeconds` / `TimeoutSecondsPath`.
    pub timeout: Option<Dynamic>,
    /// `HeartbeatSeconds` / `HeartbeatSecondsPath`.
    pub heartbeat: Option<Dynamic>,
}

/// A Choice comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpKind {
    /// String comparison.
    String,
    /// Numeric comparison.
    Numeric,
    /// Boolean equality.
    Boolean,
    /// Timestamp comparison.
    Timestamp,
}

/// The relation of a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// `...Equals`
    Eq,
    /// `...LessThan`
    Lt,
    /// `...GreaterThan`
    Gt,
    /// `...LessThanEquals`
    Le,
    /// `...GreaterThanEquals`
    Ge,
    /// `StringMatches`
    Matches,
}

/// A type test of a Choice rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeTest {
    /// `IsNull`
    Null,
    /// `IsPresent`
    Present,
    /// `IsNumeric`
    Numeric,
    /// `IsString`
    String,
    /// `IsBoolean`
    Boolean,
    /// `IsTimestamp`
    Timestamp,
}

/// A boolean expression of a Choice state.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// All hold.
    And(Vec<Rule>),
    /// One holds.
    Or(Vec<Rule>),
    /// Does not hold.
    Not(Box<Rule>),
    /// `Variable` compared with a literal or another path.
    Compare {
        /// The `Variable` path.
        variable: Path,
        /// The kind of values compared.
        kind: CmpKind,
        /// The relation.
        relation: Relation,
        /// A literal, or the value of a `...Path` operator.
        operand: Dynamic,
    },
    /// `IsNull`, `IsPresent`, ... with the expected answer.
    Test {
        /// The `Variable` path.
        variable: Path,
        /// The test.
        test: TypeTest,
        /// `true` or `false` as written.
        expected: bool,
    },
    /// A `JSONata` `Condition`.
    Condition(Template),
}

/// One branch of a Choice state.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    /// When it is taken.
    pub rule: Rule,
    /// Where it goes.
    pub next: usize,
    /// Its `Assign`.
    pub assign: Option<Template>,
    /// Its `Output` (`JSONata`).
    pub output: Option<Template>,
}

/// How a Wait state waits.
#[derive(Debug, Clone, PartialEq)]
pub enum WaitSpec {
    /// `Seconds` / `SecondsPath`.
    Seconds(Dynamic),
    /// `Timestamp` / `TimestampPath`.
    Timestamp(Dynamic),
}

/// A Map state's own fields.
#[derive(Debug, Clone, PartialEq)]
pub struct MapSpec {
    /// The item processor.
    pub processor: Arc<StateMachine>,
    /// `DISTRIBUTED` rather than `INLINE`.
    pub distributed: bool,
    /// `ItemsPath` (`JSONPath`).
    pub items_path: PathField,
    /// `Items` (`JSONata`).
    pub items: Option<Template>,
    /// `ItemSelector` or `Parameters`.
    pub item_selector: Option<Template>,
    /// `ItemReader`, as written (its `Parameters` is a template).
    pub item_reader: Option<ItemReaderSpec>,
    /// `ItemBatcher`, as written.
    pub item_batcher: Option<Value>,
    /// `MaxConcurrency` / `MaxConcurrencyPath`.
    pub max_concurrency: Option<Dynamic>,
    /// `ToleratedFailureCount` / `...Path`.
    pub tolerated_failure_count: Option<Dynamic>,
    /// `ToleratedFailurePercentage` / `...Path`.
    pub tolerated_failure_percentage: Option<Dynamic>,
}

/// A distributed Map's `ItemReader`.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemReaderSpec {
    /// `arn:aws:states:::s3:getObject` or `arn:aws:states:::s3:listObjectsV2`.
    pub resource: String,
    /// `Parameters` / `Arguments` (`Bucket`, `Key` / `Prefix`).
    pub parameters: Option<Template>,
    /// `ReaderConfig`.
    pub reader_config: Value,
}

/// What a state does.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// Passes its input (or `Result`) on.
    Pass {
        /// `Result`, if given.
        result: Option<Value>,
    },
    /// Calls a resource.
    Task(Box<TaskSpec>),
    /// Branches on rules.
    Choice {
        /// The rules, in order.
        choices: Vec<Choice>,
        /// `Default`.
        default: Option<usize>,
    },
    /// Waits.
    Wait(WaitSpec),
    /// Ends the execution successfully.
    Succeed,
    /// Ends the execution with an error.
    Fail {
        /// `Error` / `ErrorPath`.
        error: Option<Dynamic>,
        /// `Cause` / `CausePath`.
        cause: Option<Dynamic>,
    },
    /// Runs branches at once.
    Parallel {
        /// The branches.
        branches: Vec<Arc<StateMachine>>,
    },
    /// Runs its processor for every item.
    Map(Box<MapSpec>),
}

/// One state.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    /// Its name.
    pub name: Arc<str>,
    /// `Type` as written.
    pub type_name: &'static str,
    /// Its `Comment`.
    pub comment: Option<String>,
    /// Its query language (its own or the machine's).
    pub query_language: QueryLanguage,
    /// The state after it; `None` for terminal states.
    pub next: Option<usize>,
    /// `InputPath`.
    pub input_path: PathField,
    /// `OutputPath`.
    pub output_path: PathField,
    /// `ResultPath`.
    pub result_path: PathField,
    /// `Parameters` (`JSONPath`) or `Arguments` (`JSONata`).
    pub parameters: Option<Template>,
    /// `ResultSelector`.
    pub result_selector: Option<Template>,
    /// `Output` (`JSONata`).
    pub output: Option<Template>,
    /// `Assign`.
    pub assign: Option<Template>,
    /// `Retry`.
    pub retry: Vec<Retrier>,
    /// `Catch`.
    pub catch: Vec<Catcher>,
    /// The rest.
    pub kind: Kind,
}

/// A validated state machine (or branch, or item processor).
#[derive(Debug, Clone, PartialEq)]
pub struct StateMachine {
    /// Index of `StartAt` in `states`.
    pub start_at: usize,
    /// The states, in definition order.
    pub states: Vec<State>,
    /// State name to index.
    pub index: HashMap<Arc<str>, usize>,
    /// The machine's `QueryLanguage`.
    pub query_language: QueryLanguage,
    /// `TimeoutSeconds` of the whole execution.
    pub timeout_seconds: Option<u64>,
}

/// Optimised integrations under `arn:aws:states:::` (any `.sync`, `.sync:2` or `.waitForTaskToken`
/// suffix), for the services whose whole list is known here; other services are not checked.
const KNOWN_INTEGRATIONS: &[&str] = &[
    "lambda:invoke",
    "dynamodb:getItem",
    "dynamodb:putItem",
    "dynamodb:updateItem",
    "dynamodb:deleteItem",
    "sns:publish",
    "sqs:sendMessage",
    "states:startExecution",
    "events:putEvents",
    "ecs:runTask",
    "batch:submitJob",
    "glue:startJobRun",
    "athena:startQueryExecution",
    "athena:getQueryExecution",
    "athena:getQueryResults",
    "athena:stopQueryExecution",
    "eks:call",
    "eks:runJob",
    "eks:createCluster",
    "eks:deleteCluster",
    "eks:createNodegroup",
    "eks:deleteNodegroup",
    "eks:createFargateProfile",
    "eks:deleteFargateProfile",
];

/// True when `resource` is a Lambda function: a plain function ARN or the `lambda:invoke` integration.
pub fn is_lambda_resource(resource: &str) -> bool {
    resource.starts_with("arn:aws:states:::lambda:invoke")
        || resource.contains(":lambda:") && resource.contains(":function:")
}

struct Ctx {
    errors: Vec<ValidationError>,
}

impl Ctx {
    fn push(&mut self, e: ValidationError) {
        self.errors.push(e);
    }
}

/// Parses and validates a definition.
pub fn parse(text: &str) -> Result<StateMachine, ValidationError> {
    let v: Value =
        serde_json::from_str(text).map_err(|e| ValidationError::NotJson(e.to_string()))?;
    parse_value(&v)
}

/// Validates an already-parsed definition.
pub fn parse_value(v: &Value) -> Result<StateMachine, ValidationError> {
    let obj = v
        .as_object()
        .ok_or_else(|| ValidationError::NotJson("not a JSON object".into()))?;
    let mut ctx = Ctx { errors: Vec::new() };
    let top_ql = match obj.get("QueryLanguage") {
        None => QueryLanguage::JsonPath,
        Some(q) => match ql(q) {
            Some(q) => q,
            None => {
                return Err(ValidationError::top(
                    "QueryLanguage",
                    "must be \"JSONPath\" or \"JSONata\"",
                ));
            }
        },
    };
    for key in obj.keys() {
        if ![
            "Comment",
            "StartAt",
            "States",
            "Version",
            "TimeoutSeconds",
            "QueryLanguage",
        ]
        .contains(&key.as_str())
        {
            ctx.push(ValidationError::top(key, "is not a supported field"));
        }
    }
    let timeout_seconds = match obj.get("TimeoutSeconds") {
        None => None,
        Some(t) => match t.as_u64() {
            Some(t) => Some(t),
            None => {
                ctx.push(ValidationError::top(
                    "TimeoutSeconds",
                    "must be a non-negative integer",
                ));
                None
            }
        },
    };
    let sm = machine(obj, top_ql, "", &mut ctx);
    if let Some(sm) = &sm {
        let mut seen = HashMap::new();
        duplicate_names(sm, &mut seen, &mut ctx);
    }
    match (sm, ctx.errors.len()) {
        (Some(mut sm), 0) => {
            sm.timeout_seconds = timeout_seconds;
            Ok(sm)
        }
        (_, 0) => Err(ValidationError::top("States", "is invalid")),
        (_, 1) => Err(ctx.errors.pop().expect("one error")),
        _ => Err(ValidationError::Many(ctx.errors)),
    }
}

fn ql(v: &Value) -> Option<QueryLanguage> {
    match v.as_str()? {
        "JSONPath" => Some(QueryLanguage::JsonPath),
        "JSONata" => Some(QueryLanguage::Jsonata),
        _ => None,
    }
}

/// Builds one scope (top level, branch, item processor). `owner` names the enclosing state for messages.
fn machine(
    obj: &Map<String, Value>,
    inherited: QueryLanguage,
    owner: &str,
    ctx: &mut Ctx,
) -> Option<StateMachine> {
    let where_ = |f: &str| {
        if owner.is_empty() {
            ValidationError::top(f, "is required")
        } else {
            ValidationError::field(owner, f, "is required")
        }
    };
    let Some(states) = obj.get("States").and_then(Value::as_object) else {
        ctx.push(where_("States"));
        return None;
    };
    let Some(start) = obj.get("StartAt").and_then(Value::as_str) else {
        ctx.push(where_("StartAt"));
        return None;
    };
    if states.is_empty() {
        ctx.push(ValidationError::top(
            "States",
            "must contain at least one state",
        ));
        return None;
    }
    let index: HashMap<Arc<str>, usize> = states
        .keys()
        .enumerate()
        .map(|(i, k)| (Arc::from(k.as_str()), i))
        .collect();
    let Some(&start_at) = index.get(start) else {
        let e = if owner.is_empty() {
            ValidationError::top("StartAt", format!("refers to missing state \"{start}\""))
        } else {
            ValidationError::field(
                owner,
                "StartAt",
                format!("refers to missing state \"{start}\""),
            )
        };
        ctx.push(e);
        return None;
    };
    let mut out = Vec::with_capacity(states.len());
    for (name, body) in states {
        if name.is_empty() || name.chars().count() > 80 {
            ctx.push(ValidationError::state(
                name,
                "a state name must be 1 to 80 characters long",
            ));
        }
        match body.as_object() {
            Some(b) => {
                if let Some(s) = state(name, b, inherited, &index, ctx) {
                    out.push(s);
                }
            }
            None => ctx.push(ValidationError::state(name, "must be a JSON object")),
        }
    }
    if out.len() != states.len() {
        return None;
    }
    let sm = StateMachine {
        start_at,
        states: out,
        index,
        query_language: inherited,
        timeout_seconds: None,
    };
    let terminal = sm.states.iter().any(|s| {
        matches!(s.kind, Kind::Succeed | Kind::Fail { .. })
            || (s.next.is_none() && !matches!(s.kind, Kind::Choice { .. }))
    });
    if !terminal {
        let e = if owner.is_empty() {
            ValidationError::top(
                "States",
                "no state ends the workflow (no End, Succeed or Fail)",
            )
        } else {
            ValidationError::state(
                owner,
                "no state of a branch ends it (no End, Succeed or Fail)",
            )
        };
        ctx.push(e);
    }
    for name in unreachable(&sm) {
        ctx.push(ValidationError::state(
            &name,
            "is not reachable from StartAt",
        ));
    }
    Some(sm)
}

/// State names must be unique across the whole machine, nested branches and processors included.
fn duplicate_names(sm: &StateMachine, seen: &mut HashMap<Arc<str>, ()>, ctx: &mut Ctx) {
    for st in &sm.states {
        if seen.insert(st.name.clone(), ()).is_some() {
            ctx.push(ValidationError::state(
                &st.name,
                "the state name appears more than once in the machine",
            ));
        }
        match &st.kind {
            Kind::Parallel { branches } => {
                branches.iter().for_each(|b| duplicate_names(b, seen, ctx))
            }
            Kind::Map(m) => duplicate_names(&m.processor, seen, ctx),
            _ => {}
        }
    }
}

/// Names of states no transition, `Default`, Choice rule or `Catch` reaches from `StartAt`.
pub fn unreachable(sm: &StateMachine) -> Vec<String> {
    let mut seen = vec![false; sm.states.len()];
    let mut stack = vec![sm.start_at];
    while let Some(i) = stack.pop() {
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        stack.extend(successors(&sm.states[i]));
    }
    sm.states
        .iter()
        .zip(seen)
        .filter(|(_, s)| !s)
        .map(|(st, _)| st.name.to_string())
        .collect()
}

/// Every state a state may go to next, including `Catch` targets.
pub fn successors(s: &State) -> Vec<usize> {
    let mut out: Vec<usize> = s.next.into_iter().collect();
    if let Kind::Choice { choices, default } = &s.kind {
        out.extend(choices.iter().map(|c| c.next));
        out.extend(*default);
    }
    out.extend(s.catch.iter().map(|c| c.next));
    out
}

const COMMON: &[&str] = &["Type", "Comment", "QueryLanguage"];
const JSONPATH_IO: &[&str] = &["InputPath", "OutputPath"];

fn allowed_fields(t: &str) -> &'static [&'static str] {
    match t {
        "Pass" => &[
            "Next",
            "End",
            "InputPath",
            "OutputPath",
            "ResultPath",
            "Parameters",
            "Result",
            "Assign",
            "Output",
        ],
        "Task" => &[
            "Next",
            "End",
            "InputPath",
            "OutputPath",
            "ResultPath",
            "Parameters",
            "ResultSelector",
            "Arguments",
            "Output",
            "Assign",
            "Retry",
            "Catch",
            "Resource",
            "TimeoutSeconds",
            "TimeoutSecondsPath",
            "HeartbeatSeconds",
            "HeartbeatSecondsPath",
            "Credentials",
        ],
        "Choice" => &[
            "InputPath",
            "OutputPath",
            "Choices",
            "Default",
            "Assign",
            "Output",
        ],
        "Wait" => &[
            "Next",
            "End",
            "InputPath",
            "OutputPath",
            "Seconds",
            "Timestamp",
            "SecondsPath",
            "TimestampPath",
            "Assign",
            "Output",
        ],
        "Succeed" => &["InputPath", "OutputPath", "Output"],
        "Fail" => &["Error", "Cause", "ErrorPath", "CausePath"],
        "Parallel" => &[
            "Next",
            "End",
            "InputPath",
            "OutputPath",
            "ResultPath",
            "Parameters",
            "ResultSelector",
            "Arguments",
            "Output",
            "Assign",
            "Retry",
            "Catch",
            "Branches",
        ],
        "Map" => &[
            "Next",
            "End",
            "InputPath",
            "OutputPath",
            "ResultPath",
            "Parameters",
            "ResultSelector",
            "Output",
            "Assign",
            "Retry",
            "Catch",
            "Iterator",
            "ItemProcessor",
            "ItemsPath",
            "Items",
            "ItemSelector",
            "ItemReader",
            "ItemBatcher",
            "ResultWriter",
            "MaxConcurrency",
            "MaxConcurrencyPath",
            "ToleratedFailureCount",
            "ToleratedFailureCountPath",
            "ToleratedFailurePercentage",
            "ToleratedFailurePercentagePath",
            "Label",
        ],
        _ => &[],
    }
}

const JSONPATH_ONLY: &[&str] = &[
    "InputPath",
    "OutputPath",
    "ResultPath",
    "Parameters",
    "ResultSelector",
    "ItemsPath",
    "SecondsPath",
    "TimestampPath",
    "TimeoutSecondsPath",
    "HeartbeatSecondsPath",
    "ErrorPath",
    "CausePath",
    "MaxConcurrencyPath",
    "ToleratedFailureCountPath",
    "ToleratedFailurePercentagePath",
];
const JSONATA_ONLY: &[&str] = &["Arguments", "Output", "Items"];

fn state(
    name: &str,
    b: &Map<String, Value>,
    inherited: QueryLanguage,
    index: &HashMap<Arc<str>, usize>,
    ctx: &mut Ctx,
) -> Option<State> {
    let Some(t) = b.get("Type").and_then(Value::as_str) else {
        ctx.push(ValidationError::field(
            name,
            "Type",
            "is required and must be a string",
        ));
        return None;
    };
    let type_name: &'static str = match t {
        "Pass" => "Pass",
        "Task" => "Task",
        "Choice" => "Choice",
        "Wait" => "Wait",
        "Succeed" => "Succeed",
        "Fail" => "Fail",
        "Parallel" => "Parallel",
        "Map" => "Map",
        other => {
            ctx.push(ValidationError::field(
                name,
                "Type",
                format!("\"{other}\" is not a state type"),
            ));
            return None;
        }
    };
    let qlang = match b.get("QueryLanguage") {
        None => inherited,
        Some(q) => match ql(q) {
            Some(QueryLanguage::JsonPath) if inherited == QueryLanguage::Jsonata => {
                ctx.push(ValidationError::field(
                    name,
                    "QueryLanguage",
                    "a state cannot use JSONPath when the state machine uses JSONata",
                ));
                QueryLanguage::JsonPath
            }
            Some(q) => q,
            None => {
                ctx.push(ValidationError::field(
                    name,
                    "QueryLanguage",
                    "must be \"JSONPath\" or \"JSONata\"",
                ));
                inherited
            }
        },
    };
    let before = ctx.errors.len();
    let allowed = allowed_fields(type_name);
    for key in b.keys() {
        if COMMON.contains(&key.as_str()) {
            continue;
        }
        let io_field = JSONPATH_IO.contains(&key.as_str()) && type_name != "Fail";
        if !(allowed.contains(&key.as_str()) || io_field) {
            ctx.push(ValidationError::field(
                name,
                key,
                format!("is not supported by a {type_name} state"),
            ));
            continue;
        }
        if qlang == QueryLanguage::Jsonata && JSONPATH_ONLY.contains(&key.as_str()) {
            ctx.push(ValidationError::field(
                name,
                key,
                "is a JSONPath field and may not be used in a JSONata state",
            ));
        }
        if qlang == QueryLanguage::JsonPath && JSONATA_ONLY.contains(&key.as_str()) {
            ctx.push(ValidationError::field(
                name,
                key,
                "is a JSONata field and may not be used in a JSONPath state",
            ));
        }
    }

    let resolve = |target: &Value, field: &str, ctx: &mut Ctx| -> Option<usize> {
        match target.as_str() {
            Some(t) => match index.get(t) {
                Some(&i) => Some(i),
                None => {
                    ctx.push(ValidationError::field(
                        name,
                        field,
                        format!("refers to missing state \"{t}\""),
                    ));
                    None
                }
            },
            None => {
                ctx.push(ValidationError::field(name, field, "must be a state name"));
                None
            }
        }
    };

    let terminal = matches!(type_name, "Choice" | "Succeed" | "Fail");
    let mut next = None;
    if !terminal {
        let end = b.get("End");
        match (b.get("Next"), end) {
            (Some(_), Some(Value::Bool(true))) => ctx.push(ValidationError::state(
                name,
                "has both \"Next\" and \"End\": a state takes one of them",
            )),
            (Some(n), _) => next = resolve(n, "Next", ctx),
            (None, Some(Value::Bool(true))) => {}
            (None, _) => ctx.push(ValidationError::field(
                name,
                "Next",
                "is required unless \"End\" is true",
            )),
        }
    }

    let path_field = |field: &str, reference: bool, ctx: &mut Ctx| -> PathField {
        match b.get(field) {
            None => PathField::Default,
            Some(Value::Null) => PathField::Null,
            Some(Value::String(s)) => match Path::parse(s) {
                Ok(p) if reference && !p.is_reference() => {
                    ctx.push(ValidationError::field(
                        name,
                        field,
                        format!("\"{s}\" is not a valid reference path"),
                    ));
                    PathField::Default
                }
                Ok(p) => PathField::Path(p),
                Err(e) => {
                    ctx.push(ValidationError::field(name, field, e.to_string()));
                    PathField::Default
                }
            },
            Some(_) => {
                ctx.push(ValidationError::field(
                    name,
                    field,
                    "must be a string or null",
                ));
                PathField::Default
            }
        }
    };
    let input_path = path_field("InputPath", false, ctx);
    let output_path = path_field("OutputPath", false, ctx);
    let result_path = path_field("ResultPath", true, ctx);
    let tmpl = |field: &str, ctx: &mut Ctx| -> Option<Template> {
        b.get(field).map(|v| template(v, qlang, name, field, ctx))
    };
    let parameters = if qlang == QueryLanguage::Jsonata {
        tmpl("Arguments", ctx)
    } else {
        tmpl("Parameters", ctx)
    };
    let result_selector = tmpl("ResultSelector", ctx);
    let output = tmpl("Output", ctx);
    let assign = match b.get("Assign") {
        Some(Value::Object(_)) => tmpl("Assign", ctx),
        Some(_) => {
            ctx.push(ValidationError::field(
                name,
                "Assign",
                "must be a JSON object",
            ));
            None
        }
        None => None,
    };
    if let Some(Value::String(_)) = b.get("Parameters").filter(|_| type_name != "Map") {
        ctx.push(ValidationError::field(
            name,
            "Parameters",
            "must be a JSON object",
        ));
    }

    let retry = match b.get("Retry") {
        None => Vec::new(),
        Some(Value::Array(items)) => items.iter().filter_map(|r| retrier(name, r, ctx)).collect(),
        Some(_) => {
            ctx.push(ValidationError::field(name, "Retry", "must be an array"));
            Vec::new()
        }
    };
    let catch = match b.get("Catch") {
        None => Vec::new(),
        Some(Value::Array(items)) => {
            let mut out = Vec::new();
            for c in items {
                let Some(o) = c.as_object() else {
                    ctx.push(ValidationError::field(
                        name,
                        "Catch",
                        "each catcher must be an object",
                    ));
                    continue;
                };
                let errs = error_equals(name, "Catch", o.get("ErrorEquals"), ctx);
                let Some(n) = o.get("Next") else {
                    ctx.push(ValidationError::field(
                        name,
                        "Catch",
                        "each catcher needs \"Next\"",
                    ));
                    continue;
                };
                let Some(target) = resolve(n, "Catch.Next", ctx) else {
                    continue;
                };
                let rp = match o.get("ResultPath") {
                    None => PathField::Default,
                    Some(Value::Null) => PathField::Null,
                    Some(Value::String(s)) => match Path::parse(s) {
                        Ok(p) if p.is_reference() => PathField::Path(p),
                        _ => {
                            ctx.push(ValidationError::field(
                                name,
                                "Catch.ResultPath",
                                format!("\"{s}\" is not a valid reference path"),
                            ));
                            PathField::Default
                        }
                    },
                    Some(_) => {
                        ctx.push(ValidationError::field(
                            name,
                            "Catch.ResultPath",
                            "must be a string or null",
                        ));
                        PathField::Default
                    }
                };
                if qlang == QueryLanguage::Jsonata && o.contains_key("ResultPath") {
                    ctx.push(ValidationError::field(
                        name,
                        "Catch.ResultPath",
                        "is a JSONPath field and may not be used in a JSONata state",
                    ));
                }
                out.push(Catcher {
                    error_equals: errs,
                    next: target,
                    result_path: rp,
                    assign: o
                        .get("Assign")
                        .map(|v| template(v, qlang, name, "Catch.Assign", ctx)),
                    output: o
                        .get("Output")
                        .map(|v| template(v, qlang, name, "Catch.Output", ctx)),
                });
            }
            out
        }
        Some(_) => {
            ctx.push(ValidationError::field(name, "Catch", "must be an array"));
            Vec::new()
        }
    };

    let kind = match type_name {
        "Pass" => Kind::Pass {
            result: b.get("Result").cloned(),
        },
        "Succeed" => Kind::Succeed,
        "Fail" => {
            let error = dynamic(name, b, "Error", "ErrorPath", qlang, ctx, false);
            let cause = dynamic(name, b, "Cause", "CausePath", qlang, ctx, false);
            Kind::Fail { error, cause }
        }
        "Wait" => {
            let n = ["Seconds", "Timestamp", "SecondsPath", "TimestampPath"]
                .iter()
                .filter(|k| b.contains_key(**k))
                .count();
            if n != 1 {
                ctx.push(ValidationError::state(
                    name,
                    "a Wait state needs exactly one of \"Seconds\", \"Timestamp\", \"SecondsPath\", \"TimestampPath\"",
                ));
                return None;
            }
            if let Some(s) = dynamic(name, b, "Seconds", "SecondsPath", qlang, ctx, true) {
                if let Dynamic::Value(v) = &s
                    && v.as_u64().is_none()
                {
                    ctx.push(ValidationError::field(
                        name,
                        "Seconds",
                        "must be a non-negative integer",
                    ));
                }
                Kind::Wait(WaitSpec::Seconds(s))
            } else if let Some(t) = dynamic(name, b, "Timestamp", "TimestampPath", qlang, ctx, true)
            {
                if let Dynamic::Value(v) = &t
                    && v.as_str()
                        .and_then(crate::choice::parse_timestamp)
                        .is_none()
                {
                    ctx.push(ValidationError::field(
                        name,
                        "Timestamp",
                        "must be an RFC 3339 timestamp",
                    ));
                }
                Kind::Wait(WaitSpec::Timestamp(t))
            } else {
                return None;
            }
        }
        "Task" => {
            let Some(resource) = b.get("Resource").and_then(Value::as_str) else {
                ctx.push(ValidationError::field(
                    name,
                    "Resource",
                    "is required and must be a string",
                ));
                return None;
            };
            check_resource(name, resource, ctx);
            if let Some(c) = b.get("Credentials") {
                let ok = c
                    .as_object()
                    .is_some_and(|o| o.contains_key("RoleArn") || o.contains_key("RoleArn.$"));
                if !ok {
                    ctx.push(ValidationError::field(
                        name,
                        "Credentials",
                        "the field \"RoleArn\" is required",
                    ));
                }
            }
            let timeout = dynamic(
                name,
                b,
                "TimeoutSeconds",
                "TimeoutSecondsPath",
                qlang,
                ctx,
                true,
            );
            let heartbeat = dynamic(
                name,
                b,
                "HeartbeatSeconds",
                "HeartbeatSecondsPath",
                qlang,
                ctx,
                true,
            );
            for (f, d) in [
                ("TimeoutSeconds", &timeout),
                ("HeartbeatSeconds", &heartbeat),
            ] {
                if let Some(Dynamic::Value(v)) = d
                    && v.as_u64().is_none_or(|x| x == 0)
                {
                    ctx.push(ValidationError::field(
                        name,
                        f,
                        "must be a positive integer",
                    ));
                }
            }
            if let (Some(Dynamic::Value(t)), Some(Dynamic::Value(h))) = (&timeout, &heartbeat)
                && h.as_u64() >= t.as_u64()
            {
                ctx.push(ValidationError::field(
                    name,
                    "HeartbeatSeconds",
                    "must be smaller than \"TimeoutSeconds\"",
                ));
            }
            Kind::Task(Box::new(TaskSpec {
                resource: resource.to_string(),
                timeout,
                heartbeat,
            }))
        }
        "Choice" => {
            let items = required_objects(b, name, "Choices", "choice", ctx)?;
            let mut choices = Vec::new();
            for o in items {
                let Some(n) = o.get("Next") else {
                    ctx.push(ValidationError::field(
                        name,
                        "Choices",
                        "each choice rule needs \"Next\"",
                    ));
                    continue;
                };
                let Some(target) = resolve(n, "Choices.Next", ctx) else {
                    continue;
                };
                let rule = if qlang == QueryLanguage::Jsonata {
                    match o.get("Condition") {
                        Some(c) => Rule::Condition(template(c, qlang, name, "Condition", ctx)),
                        None => {
                            ctx.push(ValidationError::field(
                                name,
                                "Choices",
                                "each JSONata choice rule needs \"Condition\"",
                            ));
                            continue;
                        }
                    }
                } else {
                    match crate::choice::parse_rule(o, true) {
                        Ok(r) => r,
                        Err(m) => {
                            ctx.push(ValidationError::field(name, "Choices", m));
                            continue;
                        }
                    }
                };
                choices.push(Choice {
                    rule,
                    next: target,
                    assign: o
                        .get("Assign")
                        .map(|v| template(v, qlang, name, "Choices.Assign", ctx)),
                    output: o
                        .get("Output")
                        .map(|v| template(v, qlang, name, "Choices.Output", ctx)),
                });
            }
            let default = b.get("Default").and_then(|d| resolve(d, "Default", ctx));
            Kind::Choice { choices, default }
        }
        "Parallel" => {
            let items = required_objects(b, name, "Branches", "branch", ctx)?;
            let mut branches = Vec::new();
            for o in items {
                if let Some(sm) = sub_machine(o, qlang, name, ctx) {
                    branches.push(Arc::new(sm));
                }
            }
            Kind::Parallel { branches }
        }
        "Map" => map_spec(name, b, qlang, ctx)?,
        _ => unreachable!("type checked above"),
    };
    if ctx.errors.len() != before {
        return None;
    }
    Some(State {
        name: Arc::from(name),
        type_name,
        comment: b.get("Comment").and_then(Value::as_str).map(str::to_string),
        query_language: qlang,
        next,
        input_path,
        output_path,
        result_path,
        parameters,
        result_selector,
        output,
        assign,
        retry,
        catch,
        kind,
    })
}

/// A field that must hold a non-empty array of objects (`Choices`, `Branches`): the objects, with an error
/// pushed for each element that is not one; `None`, with an error, when the array is missing or empty.
fn required_objects<'a>(
    b: &'a Map<String, Value>,
    name: &str,
    field: &str,
    element: &str,
    ctx: &mut Ctx,
) -> Option<Vec<&'a Map<String, Value>>> {
    let Some(items) = b
        .get(field)
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
    else {
        ctx.push(ValidationError::field(
            name,
            field,
            "is required and must be a non-empty array",
        ));
        return None;
    };
    let mut objects = Vec::with_capacity(items.len());
    for item in items {
        match item.as_object() {
            Some(o) => objects.push(o),
            None => ctx.push(ValidationError::field(
                name,
                field,
                format!("each {element} must be an object"),
            )),
        }
    }
    Some(objects)
}

fn sub_machine(
    o: &Map<String, Value>,
    qlang: QueryLanguage,
    owner: &str,
    ctx: &mut Ctx,
) -> Option<StateMachine> {
    let inner_ql = match o.get("QueryLanguage") {
        None => qlang,
        Some(q) => ql(q).unwrap_or(qlang),
    };
    machine(o, inner_ql, owner, ctx)
}

fn map_spec(
    name: &str,
    b: &Map<String, Value>,
    qlang: QueryLanguage,
    ctx: &mut Ctx,
) -> Option<Kind> {
    let (proc_field, proc) = match (b.get("ItemProcessor"), b.get("Iterator")) {
        (Some(p), None) => ("ItemProcessor", p),
        (None, Some(p)) => ("Iterator", p),
        (Some(_), Some(_)) => {
            ctx.push(ValidationError::state(
                name,
                "has both \"ItemProcessor\" and \"Iterator\"",
            ));
            return None;
        }
        (None, None) => {
            ctx.push(ValidationError::field(name, "ItemProcessor", "is required"));
            return None;
        }
    };
    let Some(po) = proc.as_object() else {
        ctx.push(ValidationError::field(
            name,
            proc_field,
            "must be an object",
        ));
        return None;
    };
    let mut distributed = false;
    if let Some(cfg) = po.get("ProcessorConfig") {
        match cfg.get("Mode").and_then(Value::as_str) {
            None | Some("INLINE") => {}
            Some("DISTRIBUTED") => distributed = true,
            Some(other) => ctx.push(ValidationError::field(
                name,
                "ItemProcessor.ProcessorConfig.Mode",
                format!("\"{other}\" is not INLINE or DISTRIBUTED"),
            )),
        }
        if let Some(et) = cfg.get("ExecutionType").and_then(Value::as_str)
            && !["STANDARD", "EXPRESS"].contains(&et)
        {
            ctx.push(ValidationError::field(
                name,
                "ItemProcessor.ProcessorConfig.ExecutionType",
                format!("\"{et}\" is not STANDARD or EXPRESS"),
            ));
        }
    }
    if let Some(label) = b.get("Label") {
        match label.as_str() {
            Some(l) => {
                if l.is_empty() {
                    ctx.push(ValidationError::field(name, "Label", "cannot be empty"));
                } else if l.chars().count() > 40 {
                    ctx.push(ValidationError::field(
                        name,
                        "Label",
                        "cannot exceed 40 characters",
                    ));
                } else if let Some(c) = l.chars().find(|&c| {
                    c.is_whitespace()
                        || "<>{}[]?*\"#%\\^|~`$&,;:/".contains(c)
                        || (c as u32) < 0x20
                        || (0x7f..=0x9f).contains(&(c as u32))
                }) {
                    ctx.push(ValidationError::field(
                        name,
                        "Label",
                        format!("contains invalid character {c:?}"),
                    ));
                }
                if !distributed {
                    ctx.push(ValidationError::field(
                        name,
                        "Label",
                        "is only supported by a DISTRIBUTED Map",
                    ));
                }
            }
            None => ctx.push(ValidationError::field(name, "Label", "must be a string")),
        }
    }
    for f in ["ItemReader", "ItemBatcher", "ResultWriter"] {
        if b.contains_key(f) && !distributed {
            ctx.push(ValidationError::field(
                name,
                f,
                "is only supported by a DISTRIBUTED Map",
            ));
        }
    }
    if b.contains_key("ItemSelector") && b.contains_key("Parameters") {
        ctx.push(ValidationError::state(
            name,
            "has both \"ItemSelector\" and \"Parameters\"",
        ));
    }
    let processor = sub_machine(po, qlang, name, ctx)?;
    let selector_field = if b.contains_key("ItemSelector") {
        "ItemSelector"
    } else {
        "Parameters"
    };
    let item_selector = b
        .get(selector_field)
        .map(|v| template(v, qlang, name, selector_field, ctx));
    let items_path = match b.get("ItemsPath") {
        None => PathField::Default,
        Some(Value::String(s)) => match Path::parse(s) {
            Ok(p) => PathField::Path(p),
            Err(e) => {
                ctx.push(ValidationError::field(name, "ItemsPath", e.to_string()));
                PathField::Default
            }
        },
        Some(_) => {
            ctx.push(ValidationError::field(
                name,
                "ItemsPath",
                "must be a string",
            ));
            PathField::Default
        }
    };
    let items = b
        .get("Items")
        .map(|v| template(v, qlang, name, "Items", ctx));
    let item_reader = match b.get("ItemReader") {
        None => None,
        Some(r) => {
            let Some(resource) = r.get("Resource").and_then(Value::as_str) else {
                ctx.push(ValidationError::field(
                    name,
                    "ItemReader.Resource",
                    "is required",
                ));
                return None;
            };
            let params = r.get("Parameters").or_else(|| r.get("Arguments"));
            Some(ItemReaderSpec {
                resource: resource.to_string(),
                parameters: params.map(|p| template(p, qlang, name, "ItemReader.Parameters", ctx)),
                reader_config: r.get("ReaderConfig").cloned().unwrap_or(Value::Null),
            })
        }
    };
    let max_concurrency = dynamic(
        name,
        b,
        "MaxConcurrency",
        "MaxConcurrencyPath",
        qlang,
        ctx,
        true,
    );
    let tolerated_failure_count = dynamic(
        name,
        b,
        "ToleratedFailureCount",
        "ToleratedFailureCountPath",
        qlang,
        ctx,
        true,
    );
    let tolerated_failure_percentage = dynamic(
        name,
        b,
        "ToleratedFailurePercentage",
        "ToleratedFailurePercentagePath",
        qlang,
        ctx,
        true,
    );
    if let Some(Dynamic::Value(v)) = &max_concurrency
        && v.as_u64().is_none()
    {
        ctx.push(ValidationError::field(
            name,
            "MaxConcurrency",
            "must be a non-negative integer",
        ));
    }
    if let Some(Dynamic::Value(v)) = &tolerated_failure_percentage
        && !v.as_f64().is_some_and(|p| (0.0..=100.0).contains(&p))
    {
        ctx.push(ValidationError::field(
            name,
            "ToleratedFailurePercentage",
            "must be between 0 and 100",
        ));
    }
    Some(Kind::Map(Box::new(MapSpec {
        processor: Arc::new(processor),
        distributed,
        items_path,
        items,
        item_selector,
        item_reader,
        item_batcher: b.get("ItemBatcher").cloned(),
        max_concurrency,
        tolerated_failure_count,
        tolerated_failure_percentage,
    })))
}

fn check_resource(name: &str, resource: &str, ctx: &mut Ctx) {
    if let Some(rest) = resource.strip_prefix("arn:aws:states:::") {
        let base = rest.split(".sync").next().unwrap_or(rest);
        let base = base.strip_suffix(".waitForTaskToken").unwrap_or(base);
        // A service whose optimised actions are all listed must name one of them (`dynamodb:query`
        // exists only as `aws-sdk:dynamodb:query`); other services get the benefit of the doubt.
        let service = base.split(':').next().unwrap_or(base);
        let listed_service = KNOWN_INTEGRATIONS
            .iter()
            .any(|k| k.split(':').next() == Some(service));
        let known = base.starts_with("aws-sdk:")
            || base.starts_with("activity")
            || KNOWN_INTEGRATIONS.contains(&base)
            || (!listed_service && base.contains(':'));
        if !known {
            ctx.push(ValidationError::field(
                name,
                "Resource",
                format!("the resource {resource} is not a recognised service integration"),
            ));
        }
    } else if !resource.starts_with("arn:") {
        ctx.push(ValidationError::field(
            name,
            "Resource",
            format!("\"{resource}\" is not a valid resource ARN"),
        ));
    }
}

/// A field given literally (`name`), by path (`path_name`, `JSONPath` only) or as `{% %}` (`JSONata`).
fn dynamic(
    state: &str,
    b: &Map<String, Value>,
    name: &str,
    path_name: &str,
    qlang: QueryLanguage,
    ctx: &mut Ctx,
    numeric: bool,
) -> Option<Dynamic> {
    match (b.get(name), b.get(path_name)) {
        (Some(_), Some(_)) => {
            ctx.push(ValidationError::state(
                state,
                format!("has both \"{name}\" and \"{path_name}\""),
            ));
            None
        }
        (Some(v), None) => {
            if qlang == QueryLanguage::Jsonata
                && let Some(e) = v.as_str().and_then(jsonata_expr)
            {
                return Some(Dynamic::Jsonata(Arc::from(e)));
            }
            if numeric && !(v.is_number() || v.is_string()) {
                ctx.push(ValidationError::field(state, name, "has the wrong type"));
            }
            Some(Dynamic::Value(v.clone()))
        }
        (None, Some(p)) => {
            let Some(s) = p.as_str() else {
                ctx.push(ValidationError::field(state, path_name, "must be a string"));
                return None;
            };
            if intrinsic::looks_like_call(s) {
                match Call::parse(s) {
                    Ok(c) => return Some(Dynamic::Call(Box::new(c))),
                    Err(e) => {
                        ctx.push(ValidationError::field(state, path_name, e));
                        return None;
                    }
                }
            }
            match Path::parse(s) {
                Ok(p) => Some(Dynamic::Path(p)),
                Err(e) => {
                    ctx.push(ValidationError::field(state, path_name, e.to_string()));
                    None
                }
            }
        }
        (None, None) => None,
    }
}

/// Returns the expression inside `{% ... %}`, if `s` is one.
pub fn jsonata_expr(s: &str) -> Option<&str> {
    let t = s.strip_prefix("{%")?.strip_suffix("%}")?;
    Some(t.trim())
}

/// Compiles a template field.
fn template(v: &Value, qlang: QueryLanguage, state: &str, field: &str, ctx: &mut Ctx) -> Template {
    match qlang {
        QueryLanguage::JsonPath => jp_template(v, state, field, ctx),
        QueryLanguage::Jsonata => ja_template(v),
    }
}

fn is_static(t: &Template) -> bool {
    matches!(t, Template::Literal(_))
}

fn jp_template(v: &Value, state: &str, field: &str, ctx: &mut Ctx) -> Template {
    match v {
        Value::Object(o) => {
            let mut fields = Vec::with_capacity(o.len());
            for (k, val) in o {
                if let Some(key) = k.strip_suffix(".$") {
                    let Some(s) = val.as_str() else {
                        ctx.push(ValidationError::field(
                            state,
                            field,
                            format!(
                                "the value of \"{k}\" must be a path or intrinsic function string"
                            ),
                        ));
                        continue;
                    };
                    let t = if intrinsic::looks_like_call(s) {
                        match Call::parse(s) {
                            Ok(c) => Template::Call(c),
                            Err(e) => {
                                ctx.push(ValidationError::field(state, field, format!("the value of \"{k}\" must be a valid JSONPath or a valid intrinsic function call: {e}")));
                                continue;
                            }
                        }
                    } else {
                        match Path::parse(s) {
                            Ok(p) => Template::Path(p),
                            Err(e) => {
                                ctx.push(ValidationError::field(state, field, format!("the value of \"{k}\" must be a valid JSONPath or a valid intrinsic function call: {e}")));
                                continue;
                            }
                        }
                    };
                    fields.push((key.to_string(), t));
                } else {
                    fields.push((k.clone(), jp_template(val, state, field, ctx)));
                }
            }
            if fields.iter().all(|(_, t)| is_static(t)) && !o.keys().any(|k| k.ends_with(".$")) {
                Template::Literal(v.clone())
            } else {
                Template::Object(fields)
            }
        }
        Value::Array(a) => {
            let items: Vec<Template> = a
                .iter()
                .map(|x| jp_template(x, state, field, ctx))
                .collect();
            if items.iter().all(is_static) {
                Template::Literal(v.clone())
            } else {
                Template::Array(items)
            }
        }
        other => Template::Literal(other.clone()),
    }
}

fn ja_template(v: &Value) -> Template {
    match v {
        Value::String(s) => match jsonata_expr(s) {
            Some(e) => Template::Jsonata(Arc::from(e)),
            None => Template::Literal(v.clone()),
        },
        Value::Object(o) => {
            let fields: Vec<(String, Template)> =
                o.iter().map(|(k, x)| (k.clone(), ja_template(x))).collect();
            if fields.iter().all(|(_, t)| is_static(t)) {
                Template::Literal(v.clone())
            } else {
                Template::Object(fields)
            }
        }
        Value::Array(a) => {
            let items: Vec<Template> = a.iter().map(ja_template).collect();
            if items.iter().all(is_static) {
                Template::Literal(v.clone())
            } else {
                Template::Array(items)
            }
        }
        other => Template::Literal(other.clone()),
    }
}

fn error_equals(state: &str, field: &str, v: Option<&Value>, ctx: &mut Ctx) -> Vec<String> {
    let Some(arr) = v.and_then(Value::as_array).filter(|a| !a.is_empty()) else {
        ctx.push(ValidationError::field(
            state,
            field,
            "\"ErrorEquals\" is required and must be a non-empty array",
        ));
        return Vec::new();
    };
    let names: Vec<String> = arr
        .iter()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect();
    if names.len() != arr.len() {
        ctx.push(ValidationError::field(
            state,
            field,
            "\"ErrorEquals\" holds error name strings",
        ));
    }
    if names.iter().any(|n| n == crate::error::names::ALL) && names.len() > 1 {
        ctx.push(ValidationError::field(
            state,
            field,
            "\"States.ALL\" must appear alone in \"ErrorEquals\"",
        ));
    }
    names
}

fn retrier(state: &str, r: &Value, ctx: &mut Ctx) -> Option<Retrier> {
    let Some(o) = r.as_object() else {
        ctx.push(ValidationError::field(
            state,
            "Retry",
            "each retrier must be an object",
        ));
        return None;
    };
    let errs = error_equals(state, "Retry", o.get("ErrorEquals"), ctx);
    let num = |k: &str, d: f64, ctx: &mut Ctx| -> f64 {
        match o.get(k) {
            None => d,
            Some(v) => v.as_f64().unwrap_or_else(|| {
                ctx.push(ValidationError::field(
                    state,
                    &format!("Retry.{k}"),
                    "must be a number",
                ));
                d
            }),
        }
    };
    let interval = num("IntervalSeconds", 1.0, ctx);
    let max_attempts = num("MaxAttempts", 3.0, ctx);
    let backoff = num("BackoffRate", 2.0, ctx);
    if interval < 1.0 || interval.fract() != 0.0 {
        ctx.push(ValidationError::field(
            state,
            "Retry.IntervalSeconds",
            "must be a positive integer",
        ));
    }
    if max_attempts < 0.0 || max_attempts.fract() != 0.0 {
        ctx.push(ValidationError::field(
            state,
            "Retry.MaxAttempts",
            "must be a non-negative integer",
        ));
    }
    if backoff < 1.0 {
        ctx.push(ValidationError::field(
            state,
            "Retry.BackoffRate",
            "must be at least 1.0",
        ));
    }
    let jitter_full = match o.get("JitterStrategy").and_then(Value::as_str) {
        None | Some("NONE") => false,
        Some("FULL") => true,
        Some(other) => {
            ctx.push(ValidationError::field(
                state,
                "Retry.JitterStrategy",
                format!("\"{other}\" is not FULL or NONE"),
            ));
            false
        }
    };
    Some(Retrier {
        error_equals: errs,
        interval_seconds: interval,
        max_attempts: max_attempts as u32,
        backoff_rate: backoff,
        max_delay_seconds: o.get("MaxDelaySeconds").and_then(Value::as_f64),
        jitter_full,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(def: Value) -> String {
        parse_value(&def)
            .expect_err("should be rejected")
            .to_string()
    }

    fn ok(def: Value) -> StateMachine {
        parse_value(&def).expect("should be valid")
    }

    #[test]
    fn transitions_must_exist_and_end() {
        let e = err(json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}}}));
        assert_eq!(
            e,
            "State \"A\": field \"Next\": refers to missing state \"B\""
        );
        let e = err(json!({"StartAt": "A", "States": {"A": {"Type": "Pass"}}}));
        assert!(
            e.contains("State \"A\": field \"Next\": is required"),
            "{e}"
        );
        let e = err(
            json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "A", "End": true}}}),
        );
        assert!(e.contains("both \"Next\" and \"End\""), "{e}");
        let e = err(json!({"StartAt": "X", "States": {"A": {"Type": "Pass", "End": true}}}));
        assert!(e.contains("StartAt") && e.contains("\"X\""), "{e}");
        assert!(err(json!({"StartAt": "A"})).contains("\"States\""));
    }

    #[test]
    fn unreachable_states_are_rejected() {
        let e = err(
            json!({"StartAt": "A", "States": {"A": {"Type": "Succeed"}, "B": {"Type": "Succeed"}}}),
        );
        assert_eq!(e, "State \"B\": is not reachable from StartAt");
        ok(json!({"StartAt": "A", "States": {
            "A": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:f", "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "B"}], "End": true},
            "B": {"Type": "Succeed"}}}));
    }

    #[test]
    fn field_combinations() {
        let e = err(json!({"StartAt": "A", "States": {"A": {"Type": "Succeed", "Next": "A"}}}));
        assert!(
            e.contains("field \"Next\": is not supported by a Succeed state"),
            "{e}"
        );
        let e = err(
            json!({"StartAt": "A", "States": {"A": {"Type": "Wait", "Seconds": 1, "SecondsPath": "$.s", "End": true}}}),
        );
        assert!(e.contains("exactly one of"), "{e}");
        let e = err(
            json!({"QueryLanguage": "JSONata", "StartAt": "A", "States": {"A": {"Type": "Pass", "InputPath": "$", "End": true}}}),
        );
        assert!(
            e.contains("field \"InputPath\": is a JSONPath field"),
            "{e}"
        );
        let e = err(
            json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Output": {}, "End": true}}}),
        );
        assert!(e.contains("field \"Output\": is a JSONata field"), "{e}");
        let e = err(
            json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Parameters": {"x.$": "nope"}, "End": true}}}),
        );
        assert!(e.contains("State \"A\": field \"Parameters\""), "{e}");
        let e = err(
            json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "ResultPath": "$.a[*]", "End": true}}}),
        );
        assert!(e.contains("ResultPath"), "{e}");
        let e = err(
            json!({"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:query", "End": true}}}),
        );
        assert!(e.contains("field \"Resource\""), "{e}");
        let e = err(
            json!({"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:f",
            "TimeoutSeconds": 5, "HeartbeatSeconds": 10, "End": true}}}),
        );
        assert!(e.contains("HeartbeatSeconds"), "{e}");
        let e = err(
            json!({"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:f",
            "Retry": [{"ErrorEquals": ["States.ALL", "X"]}], "End": true}}}),
        );
        assert!(e.contains("States.ALL"), "{e}");
    }

    #[test]
    fn choice_rules() {
        let e = err(json!({"StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": []}}}));
        assert!(e.contains("field \"Choices\""), "{e}");
        let e = err(
            json!({"StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": [{"Variable": "$.a", "Next": "C"}]}}}),
        );
        assert!(e.contains("comparison operator"), "{e}");
        let sm = ok(json!({"StartAt": "C", "States": {"C": {"Type": "Choice",
            "Choices": [{"Variable": "$.a", "StringMatches": "x*", "Next": "D"}], "Default": "D"}, "D": {"Type": "Succeed"}}}));
        assert!(matches!(sm.states[0].kind, Kind::Choice { .. }));
    }

    #[test]
    fn map_and_parallel_rules() {
        let e = err(
            json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "Branches": [], "End": true}}}),
        );
        assert!(e.contains("field \"Branches\""), "{e}");
        let e = err(
            json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true,
            "Branches": [{"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Out"}}}]}}}),
        );
        assert!(e.contains("refers to missing state \"Out\""), "{e}");
        let e = err(json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true}}}));
        assert!(e.contains("field \"ItemProcessor\""), "{e}");
        let map = |label: &str| {
            json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true, "Label": label,
            "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}, "StartAt": "I",
                "States": {"I": {"Type": "Pass", "End": true}}}}}})
        };
        ok(map("fine_label-1"));
        assert!(err(map("bad label")).contains("Label"));
        assert!(err(map("")).contains("cannot be empty"));
        assert!(err(map(&"x".repeat(41))).contains("40 characters"));
        let e = err(
            json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true, "ItemReader": {"Resource": "arn:aws:states:::s3:getObject"},
            "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": true}}}}}}),
        );
        assert!(e.contains("DISTRIBUTED"), "{e}");
    }

    #[test]
    fn query_languages_per_state() {
        let sm = ok(json!({"StartAt": "A", "States": {
            "A": {"Type": "Pass", "QueryLanguage": "JSONata", "Output": "{% $states.input %}", "Next": "B"},
            "B": {"Type": "Pass", "Parameters": {"x.$": "$.y"}, "End": true}}}));
        assert_eq!(sm.states[0].query_language, QueryLanguage::Jsonata);
        assert!(matches!(sm.states[0].output, Some(Template::Jsonata(_))));
        assert_eq!(sm.states[1].query_language, QueryLanguage::JsonPath);
        let e = err(
            json!({"QueryLanguage": "JSONata", "StartAt": "A", "States": {"A": {"Type": "Pass", "QueryLanguage": "JSONPath", "End": true}}}),
        );
        assert!(e.contains("QueryLanguage"), "{e}");
    }

    #[test]
    fn names_unique_and_an_end_required() {
        let e = err(
            json!({"StartAt": "A", "States": {"A": {"Type": "Parallel", "End": true,
            "Branches": [{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}]}}}),
        );
        assert!(e.contains("more than once"), "{e}");
        let e = err(
            json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "Next": "A"}}}),
        );
        assert!(e.contains("no state ends the workflow"), "{e}");
        ok(
            json!({"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "arn:aws:states:::sagemaker:createEndpoint", "End": true}}}),
        );
    }

    #[test]
    fn credentials_need_a_role() {
        let e = err(
            json!({"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Credentials": {}, "End": true}}}),
        );
        assert!(e.contains("RoleArn"), "{e}");
    }
}
