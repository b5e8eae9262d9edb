//! `opsplane`: bootstrap the control plane, run workflows locally or on AWS, inspect locks and history.

mod asl;
mod lock;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use opsplane_shared::aws::Clients;
use opsplane_shared::bootstrap::{BootstrapOptions, bootstrap_with};
use opsplane_shared::config::{self, Config};
use opsplane_shared::local::project_root;
use opsplane_shared::state::StateStore;

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
    /// Run the local demo: moto, bootstrap, an environment seeded, backed up and drilled on the local engine.
    Demo,
    /// The local Step Functions engine: run a definition, or score it against the conformance corpus.
    #[command(subcommand)]
    Asl(asl::AslCommand),
    /// Check definitions: validity plus opsplane's safety rules (Lambda retries, paths, lock release).
    Lint(asl::LintArgs),
    /// Run a workflow (backup, dr-drill) for an environment and follow it to its end.
    Run(RunArgs),
    /// Reports of past runs.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Environment locks: show who holds them, or release one by force (audited).
    #[command(subcommand)]
    Lock(lock::LockCommand),
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
    /// The workflow: backup or dr-drill.
    workflow: String,
    /// The environment, e.g. staging.
    #[arg(long = "env")]
    environment: String,
    /// Run on the local engine against a fresh moto instead of the deployed state machine.
    #[arg(long)]
    local: bool,
    /// With --local: the environment's spec (YAML) to seed the local world with (default: the demo's staging).
    #[arg(long, requires = "local")]
    spec: Option<PathBuf>,
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
    opsplane_shared::telemetry::init();
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
            print!("{}", out.text);
            if let Some(file) = out.html_file {
                println!("HTML report written to {}", file.display());
            }
        }
        Command::Run(args) => {
            let outcome = run_workflow(args).await?;
            println!("{}", serde_json::to_string_pretty(&outcome.summary)?);
            if !outcome.succeeded() {
                std::process::exit(1);
            }
        }
    }
    Ok(())
}

async fn demo() -> Result<()> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let root: PathBuf =
        project_root(&cwd).context("run the demo from inside the opsplane checkout")?;
    opsplane_cli::demo::run(&root).await
}

async fn run_workflow(args: RunArgs) -> Result<opsplane_cli::run::RunOutcome> {
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
        return opsplane_cli::run::local(&root, &args.workflow, &args.environment, spec).await;
    }
    let region = std::env::var("AWS_REGION").ok();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region));
    }
    let sfn = aws_sdk_sfn::Client::new(&loader.load().await);
    let actor = std::env::var("USER").unwrap_or_else(|_| "operator".to_owned());
    opsplane_cli::run::aws(&sfn, &args.workflow, &args.environment, &actor).await
}
