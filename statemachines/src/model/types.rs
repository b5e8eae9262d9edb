//! The model's types: states, their kinds, templates, dynamic fields, retriers, catchers and Choice rules.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use crate::intrinsic::Call;
use crate::model::MachineType;
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
    /// `Label`: names a DISTRIBUTED Map's Map Run and child executions (the state's name without it).
    pub label: Option<String>,
    /// `ProcessorConfig.ExecutionType` of a DISTRIBUTED Map's child executions (STANDARD by default).
    pub execution_type: MachineType,
    /// `ResultWriter`, for a DISTRIBUTED Map.
    pub result_writer: Option<ResultWriterSpec>,
}

/// A DISTRIBUTED Map's `ResultWriter`
/// (https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultwriter.html).
#[derive(Debug, Clone, PartialEq)]
pub struct ResultWriterSpec {
    /// `arn:aws:states:::s3:putObject`; `None` when only `WriterConfig` is given (the results stay in
    /// the state's output, formatted).
    pub resource: Option<String>,
    /// `Parameters` / `Arguments` (`Bucket`, `Prefix`).
    pub parameters: Option<Template>,
    /// `WriterConfig.Transformation`.
    pub transformation: Transformation,
    /// `WriterConfig.OutputType` is `JSONL` rather than `JSON`.
    pub json_lines: bool,
}

/// How a DISTRIBUTED Map shapes its child executions' results (`WriterConfig.Transformation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transformation {
    /// Each child execution as `DescribeExecution` tells it: the default when the results go to S3.
    None,
    /// Each child execution's output: the default without `ResultWriter`.
    Compact,
    /// The outputs, arrays among them flattened into one.
    Flatten,
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
