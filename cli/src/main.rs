//! `opsplane`: bootstrap the control plane, run workflows locally or on AWS, inspect locks and history.

mod asl;
mod lock;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, CommandFactory, Parser, Subcommand};
use opsplane_cli::progress::ProgressLine;
use opsplane_local::project_root;
use opsplane_shared::aws::Clients;
use opsplane_shared::bootstrap::{BootstrapOptions, bootstrap_with};
use opsplane_shared::config::{self, Config};
use opsplane_shared::notify::console_url;
use opsplane_shared::state::StateStore;
use opsplane_statemachines::Workflow;

/// opsplane: an event-driven control plane for RDS and EKS operations.
#[derive(Debug, Parser)]
#[command(name = "opsplane", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create or converge the control plane's DynamoDB table and S3 bucket.
    Bootstrap(BootstrapArgs),
    /// An environment's audit events, each checked against its Object Lock copy in S3 (exit 1 if they disagree).
    Audit(AuditArgs),
    /// Run the local demo on moto: provision dev, staging and prod (prod after an approval), back each up,
    /// drill a restore of prod, then ship a bad change to staging that its alarm rolls back.
    Demo,
    /// The local Step Functions engine: run a definition, or score it against the conformance corpus.
    #[command(subcommand)]
    Asl(asl::AslCommand),
    /// Check definitions: validity plus opsplane's safety rules (Lambda retries, paths, lock release).
    Lint(asl::LintArgs),
    /// Start one of the workflows for an environment; --wait (always with --local) follows it to its end.
    Run(RunArgs),
    /// Follow a deployed execution to its end: state, elapsed time, retries; exits non-zero unless it succeeds.
    Watch(WatchArgs),
    /// An environment's deployments, backups and drills, newest first, with console links.
    History(HistoryArgs),
    /// Print a completion script for a shell (e.g. `opsplane completions bash > /etc/bash_completion.d/opsplane`).
    Completions(CompletionsArgs),
    /// Reports of past runs.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Environment locks: show who holds them, or release one by force (audited).
    #[command(subcommand)]
    Lock(lock::LockCommand),
    /// Show what provisioning a spec would change (and its policy findings), without changing anything.
    Plan(PlanArgs),
    /// Show what differs from the environment's spec in force, and the policy findings of what exists.
    Drift(DriftArgs),
    /// The fleet's steady-state need against AWS's quotas: manual snapshots per Region, cross-Region copies
    /// a night, RDS requests of one fleet backup within the request budget, drills a night.
    PlanCapacity(PlanCapacityArgs),
    /// Roll an environment back to a known-good deployment through the deployed rollback workflow (audited,
    /// under the environment's lock): the one before the deployment in force, or a version `history` lists.
    Rollback(RollbackArgs),
    /// Approve the change a provision execution waits for.
    Approve(DecideArgs),
    /// Reject the change a provision execution waits for: it ends ApprovalRejected, nothing changed.
    Reject(DecideArgs),
}

/// `opsplane plan`.
#[derive(Debug, Args)]
struct PlanArgs {
    /// The environment.
    #[arg(long = "env")]
    environment: String,
    /// The spec (YAML).
    #[arg(long)]
    spec: PathBuf,
    /// Print the plan as JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: Target,
}

/// `opsplane plan-capacity`.
#[derive(Debug, Args)]
struct PlanCapacityArgs {
    /// RDS requests per second fleet runs may spend (default: $OPSPLANE_RDS_REQUEST_BUDGET, else 4).
    #[arg(long)]
    budget: Option<f64>,
    /// Print the plan as JSON instead of lines.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: Target,
}

/// `opsplane drift`.
#[derive(Debug, Args)]
struct DriftArgs {
    /// The environment.
    #[arg(long = "env")]
    environment: String,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: Target,
}

/// `opsplane approve|reject`.
#[derive(Debug, Args)]
struct DecideArgs {
    /// The waiting execution's ARN.
    execution: String,
    /// Why (kept in the approval record and the audit log).
    #[arg(long)]
    reason: Option<String>,
    /// Decide only if the plan waiting has this SHA-256 (as shown before deciding): a plan that changed is
    /// refused, nothing decided.
    #[arg(long, value_name = "SHA256")]
    plan_sha256: Option<String>,
    /// Refused: a local engine lives in the process that runs it.
    #[arg(long)]
    local: bool,
    #[command(flatten)]
    target: Target,
}

/// `opsplane report`.
#[derive(Debug, Subcommand)]
enum ReportCommand {
    /// DR drill reports: one line per drill, or the newest with its HTML page written to the current directory.
    Drill {
        /// The environment.
        #[arg(long = "env")]
        environment: String,
        /// Print the newest drill and write its HTML page.
        #[arg(long)]
        latest: bool,
        /// Print the reports as JSON (an array, oldest first) instead of one line each.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
    /// The fleet's heat map: every environment's newest backup, last drill's RTO and RPO against their
    /// targets, and health; stored under reports/fleet/ and its HTML page written to the current directory.
    Fleet {
        /// Print the report as JSON instead of one line per environment.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
}

/// `opsplane bootstrap`.
#[derive(Debug, Args)]
struct BootstrapArgs {
    /// Encrypt the table and the bucket with this customer-managed KMS key (a key ARN; default:
    /// $OPSPLANE_KMS_KEY_ID, else AWS-managed encryption).
    #[arg(long)]
    kms_key_id: Option<String>,
    #[command(flatten)]
    target: Target,
}

/// `opsplane audit`.
#[derive(Debug, Args)]
struct AuditArgs {
    /// The environment.
    #[arg(long = "env")]
    environment: String,
    /// From when: an RFC 3339 time, a UTC date (2026-03-01) or an age (36h, 30d); default: 7 days.
    #[arg(long)]
    since: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: Target,
}

/// `opsplane run`.
#[derive(Debug, Args)]
struct RunArgs {
    /// The workflow.
    #[arg(value_parser = workflow_parser())]
    workflow: Workflow,
    /// The environment, e.g. staging.
    #[arg(long = "env")]
    environment: String,
    /// Run on the local engine against a fresh moto instead of the deployed state machine.
    #[arg(long)]
    local: bool,
    /// The environment's spec (YAML). With --local: seeds the local world (default: the demo's staging).
    /// For provision: uploaded to specs/<env>/spec.yaml first, then applied.
    #[arg(long)]
    spec: Option<PathBuf>,
    /// A JSON file whose object adds fields to the workflow's input (e.g. {"mode": "point-in-time"}).
    #[arg(long)]
    input: Option<PathBuf>,
    /// Follow the execution to its end with a progress line, and exit non-zero unless it succeeds.
    #[arg(long)]
    wait: bool,
    /// The deployed state machine to start. Default: $OPSPLANE_STATE_MACHINE_PREFIX followed by the workflow
    /// (the stack's StateMachinePrefix output), else the state machine named opsplane-<workflow>, listed.
    #[arg(long, conflicts_with = "local")]
    state_machine_arn: Option<String>,
}

/// `opsplane rollback`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["previous", "to"])))]
struct RollbackArgs {
    /// The environment.
    #[arg(long = "env")]
    environment: String,
    /// Go back to the known-good deployment before the one in force.
    #[arg(long)]
    previous: bool,
    /// Go back to this known-good spec version (as `opsplane history` lists them).
    #[arg(long, value_name = "VERSION")]
    to: Option<String>,
    /// Why (kept in the deployment record and the audit log).
    #[arg(long)]
    reason: String,
    /// Follow the execution to its end and exit non-zero unless it succeeds.
    #[arg(long)]
    wait: bool,
    /// The deployed rollback state machine (default: as for `run`).
    #[arg(long)]
    state_machine_arn: Option<String>,
}

/// `opsplane watch`.
#[derive(Debug, Args)]
struct WatchArgs {
    /// The execution's ARN.
    execution_arn: String,
}

/// `opsplane history`.
#[derive(Debug, Args)]
struct HistoryArgs {
    /// The environment.
    #[arg(long = "env")]
    environment: String,
    /// How many entries, newest first.
    #[arg(long, default_value_t = 20)]
    limit: u32,
    /// Print the entries as JSON (an array, newest first) instead of lines.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: Target,
}

/// `opsplane completions`.
#[derive(Debug, Args)]
struct CompletionsArgs {
    /// The shell.
    shell: clap_complete::Shell,
}

/// Accepts exactly the names of [`Workflow::all`], so the help lists them and nothing else.
fn workflow_parser() -> impl TypedValueParser<Value = Workflow> {
    PossibleValuesParser::new(Workflow::all().map(Workflow::name))
        .try_map(|name| name.parse::<Workflow>())
}

/// Where the control plane's state lives.
#[derive(Debug, Args)]
struct Target {
    /// Point every AWS client at this endpoint (moto), e.g. http://127.0.0.1:5000.
    #[arg(long)]
    endpoint: Option<String>,
    /// The DynamoDB table (default: $OPSPLANE_TABLE or `opsplane`).
    #[arg(long)]
    table: Option<String>,
    /// The S3 bucket (default: $OPSPLANE_BUCKET).
    #[arg(long)]
    bucket: Option<String>,
    /// The AWS region (default: $AWS_REGION).
    #[arg(long)]
    region: Option<String>,
}

impl Target {
    /// Flags first, then the environment.
    fn config(&self) -> Result<Config> {
        self.config_with(None)
    }

    /// Flags first (and `kms_key_id` for [`config::ENV_KMS_KEY_ID`]), then the environment.
    fn config_with(&self, kms_key_id: Option<String>) -> Result<Config> {
        let table = self.table.clone();
        let bucket = self.bucket.clone();
        let region = self.region.clone();
        let endpoint = self.endpoint.clone();
        let cfg = Config::from_lookup(|name| {
            let flag = match name {
                config::ENV_TABLE => table.clone(),
                config::ENV_BUCKET => bucket.clone(),
                "AWS_REGION" => region.clone(),
                config::ENV_ENDPOINT => endpoint.clone(),
                config::ENV_KMS_KEY_ID => kms_key_id.clone(),
                _ => None,
            };
            flag.or_else(|| std::env::var(name).ok().filter(|v| !v.is_empty()))
        })?;
        Ok(cfg)
    }
}

#[tokio::main]
async fn main() {
    // Warnings only unless RUST_LOG asks: the handlers run in-process, and their info lines and metric
    // records are for CloudWatch, not for the person at the terminal.
    opsplane_shared::telemetry::init_with_default("warn");
    if let Err(err) = run(Cli::parse()).await {
        // The last line a person sees goes through the same redaction as every log line and Cause.
        let chain: &(dyn std::error::Error + 'static) = err.as_ref();
        eprintln!("Error: {}", opsplane_shared::error::redacted_chain(chain));
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Bootstrap(args) => {
            let cfg = args.target.config_with(args.kms_key_id)?;
            let clients = Clients::load(&cfg).await;
            let report = bootstrap_with(
                &clients.dynamodb,
                &clients.s3,
                &cfg.table_name,
                &cfg.bucket_name,
                &cfg.region,
                BootstrapOptions::default().with_kms_key(cfg.kms_key_id.clone()),
            )
            .await?;
            println!("{report}");
        }
        Command::Audit(args) => {
            let cfg = args.target.config()?;
            let clients = Clients::load(&cfg).await;
            let store = StateStore::from_config(&cfg, &clients);
            let since = args
                .since
                .as_deref()
                .map(|s| opsplane_cli::audit::parse_since(s, store.now()))
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let report = opsplane_cli::audit::audit(&store, &args.environment, since).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", opsplane_cli::audit::render(&report));
            }
            if !report.agrees() {
                std::process::exit(1);
            }
        }
        Command::Lock(cmd) => lock::run(cmd).await?,
        Command::Demo => demo().await?,
        Command::Asl(cmd) => std::process::exit(asl::run(cmd).await?),
        Command::Lint(args) => std::process::exit(asl::lint_files(args)?),
        Command::Report(ReportCommand::Drill {
            environment,
            latest,
            json,
            target,
        }) => {
            let cfg = target.config()?;
            let clients = Clients::load(&cfg).await;
            let objects = opsplane_shared::aws::objects::ObjectStore::new(
                clients.s3.clone(),
                cfg.bucket_name.clone(),
            );
            let cwd = std::env::current_dir().context("reading the current directory")?;
            let out = opsplane_cli::report::drill(&objects, &environment, latest, &cwd).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&out.reports)?);
                if let Some(file) = out.html_file {
                    eprintln!("HTML report written to {}", file.display());
                }
            } else {
                print!("{}", out.text);
            }
        }
        Command::Report(ReportCommand::Fleet { json, target }) => {
            let cfg = target.config()?;
            let clients = Clients::load(&cfg).await;
            let objects = opsplane_shared::aws::objects::ObjectStore::new(
                clients.s3.clone(),
                cfg.bucket_name.clone(),
            );
            let specs = opsplane_shared::aws::specs::SpecStore::new(
                clients.s3.clone(),
                cfg.bucket_name.clone(),
            );
            let state = opsplane_shared::state::StateStore::from_config(&cfg, &clients);
            let cwd = std::env::current_dir().context("reading the current directory")?;
            let out =
                opsplane_cli::report::fleet(&specs, &state, &objects, &cwd, chrono::Utc::now())
                    .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&out.report)?);
                eprintln!("HTML report written to {}", out.html_file.display());
            } else {
                print!("{}", out.text);
            }
        }
        Command::PlanCapacity(args) => {
            opsplane_cli::capacity::command(&args.target.config()?, args.budget, args.json).await?;
        }
        Command::Plan(args) => {
            let cfg = args.target.config()?;
            let clients = Clients::load(&cfg).await;
            let plan =
                opsplane_cli::plan::plan_file(&clients, &args.environment, &args.spec).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&plan)?);
            } else {
                print!("{}", plan.render_table());
            }
            if plan.blocked {
                std::process::exit(1);
            }
        }
        Command::Drift(args) => {
            let cfg = args.target.config()?;
            let clients = Clients::load(&cfg).await;
            let deps = opsplane_fn_provision::Deps::new(cfg, &clients);
            let report = opsplane_fn_provision::drift::report(&deps, &args.environment).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render());
            }
        }
        Command::Approve(args) => {
            decide(args, opsplane_shared::approval::Decision::Approve).await?
        }
        Command::Reject(args) => decide(args, opsplane_shared::approval::Decision::Reject).await?,
        Command::Completions(args) => {
            clap_complete::generate(
                args.shell,
                &mut Cli::command(),
                "opsplane",
                &mut std::io::stdout(),
            );
        }
        Command::Rollback(args) => {
            let target = match args.to {
                Some(v) => opsplane_cli::run::RollbackTarget::Version(v),
                None => opsplane_cli::run::RollbackTarget::Previous,
            };
            let input =
                opsplane_cli::run::rollback_input(&args.environment, &target, &args.reason)?;
            let Some(outcome) = start_deployed(
                Workflow::Rollback,
                &args.environment,
                &input,
                args.state_machine_arn.as_deref(),
                args.wait,
            )
            .await?
            else {
                return Ok(());
            };
            println!("{}", serde_json::to_string_pretty(&outcome.summary)?);
            if !outcome.succeeded() {
                std::process::exit(1);
            }
        }
        Command::Run(args) => {
            let Some(outcome) = run_workflow(args).await? else {
                return Ok(());
            };
            println!("{}", serde_json::to_string_pretty(&outcome.summary)?);
            println!("{}", console_url(&outcome.execution_arn));
            if !outcome.succeeded() {
                std::process::exit(1);
            }
        }
        Command::Watch(args) => {
            let sfn = aws_sdk_sfn::Client::new(&aws_sdk_config().await);
            println!("{}", console_url(&args.execution_arn));
            let outcome =
                opsplane_cli::run::wait_aws(&sfn, &args.execution_arn, &mut ProgressLine::stderr())
                    .await?;
            println!("{}", serde_json::to_string_pretty(&outcome.summary)?);
            if !outcome.succeeded() {
                std::process::exit(1);
            }
        }
        Command::History(args) => {
            let cfg = args.target.config()?;
            let clients = Clients::load(&cfg).await;
            let store = opsplane_shared::state::StateStore::from_config(&cfg, &clients);
            let entries =
                opsplane_cli::history::history(&store, &args.environment, args.limit).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&entries)?);
                return Ok(());
            }
            if entries.is_empty() {
                println!(
                    "no deployments, backups or drills recorded for {}",
                    args.environment
                );
            }
            for entry in entries {
                println!("{}", entry.render());
            }
        }
    }
    Ok(())
}

async fn decide(args: DecideArgs, decision: opsplane_shared::approval::Decision) -> Result<()> {
    if args.local {
        anyhow::bail!(
            "--local: a local engine lives inside the process that runs it (opsplane demo, run --local, the \
             tests), so a separate opsplane process cannot reach it; approve in-process with \
             LocalPlane::approve/reject, or on AWS without --local"
        );
    }
    let cfg = args.target.config()?;
    let clients = Clients::load(&cfg).await;
    let state = opsplane_shared::state::StateStore::from_config(&cfg, &clients);
    let control = opsplane_shared::aws::sfn::SfnExecutions::new(clients.sfn.clone());
    let actor = std::env::var("USER").unwrap_or_else(|_| "operator".to_owned());
    // What is decided on: the plan waiting and its hash.
    if let Some(waiting) = state.approval(&args.execution).await? {
        eprintln!(
            "{}",
            opsplane_cli::plan::render_waiting(&waiting.plan, waiting.plan_sha256.as_deref())
        );
    }
    let record = opsplane_shared::approval::decide(
        &state,
        &control,
        &args.execution,
        decision,
        &actor,
        args.reason.as_deref(),
        args.plan_sha256.as_deref(),
    )
    .await?;
    println!(
        "{} {} by {} for {}",
        record.execution,
        record.status.as_str(),
        record.decided_by.as_deref().unwrap_or(&actor),
        record.environment
    );
    Ok(())
}

async fn demo() -> Result<()> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let root: PathBuf =
        project_root(&cwd).context("run the demo from inside the opsplane checkout")?;
    opsplane_cli::demo::run(&root).await.map(|_| ())
}

async fn aws_sdk_config() -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Ok(region) = std::env::var("AWS_REGION") {
        loader = loader.region(aws_config::Region::new(region));
    }
    loader.load().await
}

/// Runs the workflow; `None` when it was started on AWS without `--wait`.
async fn run_workflow(args: RunArgs) -> Result<Option<opsplane_cli::run::RunOutcome>> {
    let mut extra = match &args.input {
        Some(path) => Some(
            serde_json::from_str(
                &std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?,
            )
            .with_context(|| format!("{} is not JSON", path.display()))?,
        ),
        None => None,
    };
    if args.local {
        let cwd = std::env::current_dir().context("reading the current directory")?;
        let root = project_root(&cwd).context("run --local from inside the opsplane checkout")?;
        let spec = match &args.spec {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?,
            ),
            None => None,
        };
        return opsplane_cli::run::local(
            &root,
            args.workflow.name(),
            &args.environment,
            spec,
            extra,
            &mut ProgressLine::stderr(),
        )
        .await
        .map(Some);
    }
    if let Some(path) = &args.spec {
        if args.workflow != Workflow::Provision {
            anyhow::bail!(
                "--spec without --local is for provision only (it uploads the spec first)"
            );
        }
        let cfg = Config::from_env()?;
        let clients = Clients::load(&cfg).await;
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let stored =
            opsplane_shared::aws::specs::SpecStore::new(clients.s3.clone(), cfg.bucket_name)
                .put(&text)
                .await
                .with_context(|| format!("uploading {}", path.display()))?;
        eprintln!(
            "uploaded {} as specs/{}/spec.yaml version {}",
            path.display(),
            stored.spec.environment,
            stored.version
        );
        // Pin the version just uploaded: a later upload must not change what this run applies.
        if let serde_json::Value::Object(map) =
            extra.get_or_insert_with(|| serde_json::Value::Object(Default::default()))
        {
            map.insert(
                "spec_version".to_owned(),
                serde_json::Value::String(stored.version),
            );
        }
    }
    let input = opsplane_cli::run::workflow_input(&args.environment, extra)?;
    start_deployed(
        args.workflow,
        &args.environment,
        &input,
        args.state_machine_arn.as_deref(),
        args.wait,
    )
    .await
}

/// Starts the deployed state machine of `workflow` with `input` (its execution name carries the
/// environment and the user); with `wait`, follows it to its end.
async fn start_deployed(
    workflow: Workflow,
    environment: &str,
    input: &serde_json::Value,
    state_machine_arn: Option<&str>,
    wait: bool,
) -> Result<Option<opsplane_cli::run::RunOutcome>> {
    let sfn = aws_sdk_sfn::Client::new(&aws_sdk_config().await);
    let actor = std::env::var("USER").unwrap_or_else(|_| "operator".to_owned());
    let prefix = std::env::var(opsplane_cli::run::ENV_STATE_MACHINE_PREFIX)
        .ok()
        .filter(|v| !v.is_empty());
    let machine = opsplane_cli::run::resolve_state_machine(
        &sfn,
        workflow.name(),
        state_machine_arn,
        prefix.as_deref(),
    )
    .await?;
    let arn = opsplane_cli::run::start_aws(&sfn, &machine, environment, input, &actor).await?;
    eprintln!("started {arn}");
    if !wait {
        println!("{arn}\n{}", console_url(&arn));
        return Ok(None);
    }
    opsplane_cli::run::wait_aws(&sfn, &arn, &mut ProgressLine::stderr())
        .await
        .map(Some)
}

#[cfg(test)]
#[path = "main_tests.rs"]
mod tests;
