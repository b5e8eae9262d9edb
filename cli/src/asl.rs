//! `opsplane asl run`, `opsplane asl test-state`, `opsplane asl conformance` and `opsplane lint`: the
//! local Step Functions engine from the command line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use opsplane_statemachines::conformance::{self, Report};
use opsplane_statemachines::model::MachineType;
use opsplane_statemachines::test_state::{self, InspectionLevel, Mock, TestStateRequest};
use opsplane_statemachines::{Engine, Failure, lint, validate};
use serde_json::{Value, json};

/// Where the corpus lives unless told otherwise, relative to the repository root.
const DEFAULT_CORPUS_DIR: &str = "../shared/conformance";
/// Overrides the corpus directory.
const ENV_CORPUS_DIR: &str = "OPSPLANE_CONFORMANCE_DIR";

/// The local Amazon States Language engine.
#[derive(Debug, Subcommand)]
pub enum AslCommand {
    /// Run a definition locally and print `{"status", "output" | "error", "cause"}`.
    Run(RunArgs),
    /// Run one state as the TestState API does and print its answer (`status`, `output`, `error`,
    /// `cause`, `nextState`, `inspectionData`).
    TestState(TestStateArgs),
    /// Run every case of a conformance corpus file and print the scores.
    Conformance(ConformanceArgs),
}

/// `opsplane asl test-state`.
#[derive(Debug, Args)]
pub struct TestStateArgs {
    /// A file holding a state definition, or a whole state machine (then `--state-name` picks the state).
    pub definition: PathBuf,
    /// The state to test within a state machine definition.
    #[arg(long)]
    pub state_name: Option<String>,
    /// The state's input, as JSON.
    #[arg(long, default_value = "{}")]
    pub input: String,
    /// INFO, DEBUG or TRACE.
    #[arg(long, default_value = "INFO")]
    pub inspection_level: InspectionLevel,
    /// A mocked result of the state's work, as JSON.
    #[arg(long, conflicts_with = "mock_error")]
    pub mock_result: Option<String>,
    /// A mocked error of the state's work (its name).
    #[arg(long)]
    pub mock_error: Option<String>,
    /// The mocked error's cause.
    #[arg(long, default_value = "", requires = "mock_error")]
    pub mock_cause: String,
    /// Retries the matching retrier already made.
    #[arg(long, default_value_t = 0)]
    pub retrier_retry_count: u32,
    /// Map iterations to count as failed.
    #[arg(long)]
    pub map_iteration_failure_count: Option<u64>,
    /// The context object (`$$`), as JSON.
    #[arg(long)]
    pub context: Option<String>,
}

/// `opsplane asl run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The definition file (`.asl.json`).
    pub definition: PathBuf,
    /// The execution input, as JSON.
    #[arg(long, default_value = "{}")]
    pub input: String,
    /// A `DefinitionSubstitutions` entry, `Name=value` (repeatable).
    #[arg(long = "subst", value_name = "NAME=VALUE")]
    pub substitutions: Vec<String>,
}

/// `opsplane asl conformance`.
#[derive(Debug, Args)]
pub struct ConformanceArgs {
    /// The corpus file (`.jsonl`); a relative name not found as given is looked up in the corpus directory.
    pub file: PathBuf,
    /// Write the per-case report (JSON) here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// The corpus directory (default: $OPSPLANE_CONFORMANCE_DIR, else ../shared/conformance from the repository root).
    #[arg(long)]
    pub corpus_dir: Option<PathBuf>,
    /// Fail (exit 1) when less than this percentage of the cases passes.
    #[arg(long)]
    pub min_percent: Option<f64>,
    /// Fail (exit 1) when less than this percentage of the JSONPath-only cases passes.
    #[arg(long)]
    pub min_jsonpath_percent: Option<f64>,
    /// Fail (exit 1) when less than this percentage of the rejected definitions get a validation answer
    /// in AWS's shape (invalid-definition files).
    #[arg(long)]
    pub min_shape_percent: Option<f64>,
    /// Fail (exit 1) when any valid definition of the file is rejected by validation.
    #[arg(long)]
    pub require_valid: bool,
    /// Print every failing case.
    #[arg(long)]
    pub verbose: bool,
}

/// `opsplane lint`.
#[derive(Debug, Args)]
pub struct LintArgs {
    /// Definition files.
    #[arg(required = true)]
    pub definitions: Vec<PathBuf>,
    /// `DefinitionSubstitutions` entries, `Name=value`; names without one are replaced by a placeholder
    /// Lambda ARN so that templates lint as deployed.
    #[arg(long = "subst", value_name = "NAME=VALUE")]
    pub substitutions: Vec<String>,
    /// `text`: the engine's findings, one a line; `aws`: one `ValidateStateMachineDefinition` answer
    /// (`{"result", "diagnostics"}`) a line per file.
    #[arg(long, value_enum, default_value_t = LintFormat::Text)]
    pub format: LintFormat,
    /// The state machine type to validate as (with `--format aws`): STANDARD or EXPRESS.
    #[arg(long = "type", default_value = "STANDARD")]
    pub machine_type: MachineType,
}

/// How `opsplane lint` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LintFormat {
    /// One finding a line.
    Text,
    /// AWS's `ValidateStateMachineDefinition` answer.
    Aws,
}

/// Runs an `asl` subcommand; returns the process exit code.
pub async fn run(cmd: AslCommand) -> Result<i32> {
    match cmd {
        AslCommand::Run(args) => run_definition(args).await,
        AslCommand::TestState(args) => run_test_state(args).await,
        AslCommand::Conformance(args) => run_conformance(args).await,
    }
}

async fn run_test_state(args: TestStateArgs) -> Result<i32> {
    let text = std::fs::read_to_string(&args.definition)
        .with_context(|| format!("reading {}", args.definition.display()))?;
    let parse = |flag: &str, s: &str| -> Result<Value> {
        serde_json::from_str(s).with_context(|| format!("{flag} is not valid JSON"))
    };
    let mock = match (&args.mock_result, &args.mock_error) {
        (Some(r), _) => Some(Mock::Result(parse("--mock-result", r)?)),
        (None, Some(e)) => Some(Mock::Error(Failure::new(
            e.clone(),
            args.mock_cause.clone(),
        ))),
        (None, None) => None,
    };
    let req = TestStateRequest {
        definition: parse("the definition", &text)?,
        state_name: args.state_name,
        input: parse("--input", &args.input)?,
        inspection_level: args.inspection_level,
        mock,
        retrier_retry_count: args.retrier_retry_count,
        map_iteration_failure_count: args.map_iteration_failure_count,
        context: args
            .context
            .as_deref()
            .map(|c| parse("--context", c))
            .transpose()?,
    };
    match test_state::test_state(&Engine::new(), &req).await {
        Ok(answer) => {
            println!("{}", serde_json::to_string_pretty(&answer.to_api())?);
            Ok(0)
        }
        Err(e) => {
            let out = json!({"error": e.error_name(), "message": e.to_string()});
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(1)
        }
    }
}

fn parse_substitutions(items: &[String]) -> Result<HashMap<String, String>> {
    items
        .iter()
        .map(|s| {
            let (k, v) = s
                .split_once('=')
                .with_context(|| format!("--subst \"{s}\" is not NAME=VALUE"))?;
            Ok((k.to_string(), v.to_string()))
        })
        .collect()
}

async fn run_definition(args: RunArgs) -> Result<i32> {
    let text = std::fs::read_to_string(&args.definition)
        .with_context(|| format!("reading {}", args.definition.display()))?;
    let input: Value = serde_json::from_str(&args.input).context("--input is not valid JSON")?;
    let subs = parse_substitutions(&args.substitutions)?;
    let engine = Engine::new();
    let name = args
        .definition
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("local")
        .replace('.', "-");
    let arn = engine.register_state_machine(&name, &text, &subs)?;
    let d = engine.run(&arn, input).await?;
    let mut out = json!({"status": d.status.as_str()});
    match d.output {
        Some(o) => out["output"] = o,
        None => {
            out["error"] = json!(d.error);
            out["cause"] = json!(d.cause);
        }
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(if d.status == opsplane_statemachines::Status::Succeeded {
        0
    } else {
        1
    })
}

/// The corpus directory: flag, then environment, then `../shared/conformance` from the repository root.
fn corpus_dir(flag: Option<PathBuf>) -> PathBuf {
    if let Some(d) = flag {
        return d;
    }
    if let Some(d) = std::env::var_os(ENV_CORPUS_DIR).filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    let root = cwd
        .ancestors()
        .find(|a| a.join("Cargo.toml").is_file() && a.join("statemachines").is_dir())
        .unwrap_or(&cwd);
    root.join(DEFAULT_CORPUS_DIR)
}

fn resolve_corpus_file(file: &Path, dir: &Path) -> Option<PathBuf> {
    if file.is_file() {
        return Some(file.to_path_buf());
    }
    if file.is_relative() {
        for candidate in [dir.join(file), dir.join("asl").join(file)] {
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

async fn run_conformance(args: ConformanceArgs) -> Result<i32> {
    let dir = corpus_dir(args.corpus_dir.clone());
    let Some(path) = resolve_corpus_file(&args.file, &dir) else {
        eprintln!(
            "conformance corpus not found: {} (looked as given and under {}); set {ENV_CORPUS_DIR} or --corpus-dir. Nothing was run.",
            args.file.display(),
            dir.display()
        );
        return Ok(2);
    };
    let report = conformance::run_file(&path)
        .await
        .map_err(anyhow::Error::msg)?;
    print_report(&report, args.verbose);
    if let Some(out) = &args.report {
        std::fs::write(out, serde_json::to_string_pretty(&report_json(&report))?)
            .with_context(|| format!("writing {}", out.display()))?;
    }
    let total = report.total();
    let jsonpath = report.jsonpath_only();
    let mut code = 0;
    let floors = [
        (args.min_percent, total.percent(), ""),
        (
            args.min_jsonpath_percent,
            jsonpath.percent(),
            " of the JSONPath-only cases",
        ),
    ];
    for (floor, passed, of) in floors {
        if let Some(min) = floor
            && passed < min
        {
            eprintln!("FLOOR MISSED: {passed:.1}%{of} passed, the floor is {min}%");
            code = 1;
        }
    }
    let shape = report.validation_shape();
    if let Some(min) = args.min_shape_percent
        && shape.percent() < min
    {
        eprintln!(
            "FLOOR MISSED: {:.1}% of the validation answers have AWS's shape, the floor is {min}%",
            shape.percent()
        );
        code = 1;
    }
    if args.require_valid {
        let rejected: Vec<&str> = report
            .cases
            .iter()
            .filter(|c| {
                c.actual
                    .as_ref()
                    .and_then(|a| a.get("status"))
                    .and_then(Value::as_str)
                    == Some("REJECTED")
            })
            .map(|c| c.id.as_str())
            .collect();
        if !rejected.is_empty() {
            eprintln!("{} valid definitions were rejected:", rejected.len());
            for id in rejected {
                eprintln!("  {id}");
            }
            code = 1;
        }
    }
    println!(
        "{} passed, {} failed",
        total.passed,
        total.total - total.passed
    );
    Ok(code)
}

fn report_json(report: &Report) -> Value {
    let (choice, rest) = report.choice_split();
    json!({
        "file": report.file,
        "total": report.total(),
        "jsonpath_only": report.jsonpath_only(),
        "with_choice": choice,
        "without_choice": rest,
        "by_feature": report.by_feature(),
        "validation_shape": report.validation_shape(),
        "inspection": report.inspection(),
        "cases": report.cases,
    })
}

fn print_report(report: &Report, verbose: bool) {
    let total = report.total();
    let jp = report.jsonpath_only();
    let (choice, rest) = report.choice_split();
    println!("corpus: {}", report.file);
    println!("{:<40} {:>7} {:>7} {:>7}", "group", "passed", "total", "%");
    let line = |name: &str, s: conformance::Score| {
        println!(
            "{:<40} {:>7} {:>7} {:>6.1}%",
            name,
            s.passed,
            s.total,
            s.percent()
        )
    };
    line("ALL", total);
    line("JSONPath-only", jp);
    line("cases with a Choice state", choice);
    line("cases without a Choice state", rest);
    let shape = report.validation_shape();
    if shape.total > 0 {
        line("validation answers in AWS's shape", shape);
    }
    let inspection = report.inspection();
    if inspection.total > 0 {
        line("secondary: TestState inspection data matched", inspection);
    }
    let (cause, history) = report.secondary();
    line("secondary: causes matched (failures)", cause);
    line("secondary: history event counts matched", history);
    for (f, s) in report.by_feature() {
        line(&format!("feature {f}"), s);
    }
    for c in report.cases.iter().filter(|c| !c.passed) {
        println!("FAIL {}", c.id);
        if verbose {
            println!(
                "  expected: {}",
                c.expected
                    .as_ref()
                    .map(Value::to_string)
                    .unwrap_or_default()
            );
            println!(
                "  actual:   {}",
                c.actual.as_ref().map(Value::to_string).unwrap_or_default()
            );
        }
    }
}

/// `opsplane lint DEF...`: prints every finding; returns 1 when there is any.
pub fn lint_files(args: LintArgs) -> Result<i32> {
    let subs = parse_substitutions(&args.substitutions)?;
    if args.format == LintFormat::Aws {
        let mut failed = false;
        for path in &args.definitions {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let answer = validate::validate(&fill_substitutions(&text, &subs), args.machine_type);
            failed |= answer.result == validate::Verdict::Fail;
            println!("{}", serde_json::to_string(&answer.to_json())?);
        }
        return Ok(i32::from(failed));
    }
    let mut findings = 0;
    for path in &args.definitions {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let text = fill_substitutions(&text, &subs);
        let found = lint::lint(&text);
        if found.is_empty() {
            println!("{}: ok", path.display());
        }
        for f in &found {
            println!("{}: {f}", path.display());
        }
        findings += found.len();
    }
    if findings > 0 {
        println!("{findings} finding(s)");
        return Ok(1);
    }
    Ok(0)
}

/// Applies the given substitutions; any other `${Name}` becomes a Lambda ARN named after it, which is
/// what opsplane's templates substitute.
fn fill_substitutions(text: &str, subs: &HashMap<String, String>) -> String {
    let mut all = subs.clone();
    let mut rest = text;
    while let Some(p) = rest.find("${") {
        let after = &rest[p + 2..];
        let Some(end) = after.find('}') else { break };
        let name = &after[..end];
        all.entry(name.to_string())
            .or_insert_with(|| format!("arn:aws:lambda:us-east-1:123456789012:function:{name}"));
        rest = &after[end + 1..];
    }
    match opsplane_statemachines::substitute(text, &all) {
        Ok(t) => t,
        Err(e) => {
            // Unreachable in practice (every name got a value); keep the text so validation reports it.
            eprintln!("{e}");
            text.to_string()
        }
    }
}
