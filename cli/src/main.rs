//! `opsplane`: bootstrap the control plane, run workflows locally or on AWS, inspect locks and history.

mod asl;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use opsplane_shared::aws::Clients;
use opsplane_shared::bootstrap::bootstrap;
use opsplane_shared::config::{self, Config};
use opsplane_shared::local::{MotoServer, project_root};

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
    Bootstrap(Target),
    /// Run the local demo: start moto, bootstrap, and print what was created.
    Demo,
    /// The local Step Functions engine: run a definition, or score it against the conformance corpus.
    #[command(subcommand)]
    Asl(asl::AslCommand),
    /// Check definitions: validity plus opsplane's safety rules (Lambda retries, paths, lock release).
    Lint(asl::LintArgs),
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
                _ => None,
            };
            flag.or_else(|| std::env::var(name).ok().filter(|v| !v.is_empty()))
        })?;
        Ok(cfg)
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    opsplane_shared::telemetry::init();
    let cli = Cli::parse();
    match cli.command {
        Command::Bootstrap(target) => {
            let cfg = target.config()?;
            let clients = Clients::load(&cfg).await;
            let report = bootstrap(
                &clients.dynamodb,
                &clients.s3,
                &cfg.table_name,
                &cfg.bucket_name,
                &cfg.region,
            )
            .await?;
            println!("{report}");
        }
        Command::Demo => demo().await?,
        Command::Asl(cmd) => std::process::exit(asl::run(cmd).await?),
        Command::Lint(args) => std::process::exit(asl::lint_files(args)?),
    }
    Ok(())
}

async fn demo() -> Result<()> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let root: PathBuf =
        project_root(&cwd).context("run the demo from inside the opsplane checkout")?;
    let moto = MotoServer::start(&root)?;
    println!("moto_server answering on {}", moto.endpoint());
    let cfg = Config::local(moto.endpoint(), "opsplane", "opsplane-demo-state");
    let clients = Clients::load(&cfg).await;
    let report = bootstrap(
        &clients.dynamodb,
        &clients.s3,
        &cfg.table_name,
        &cfg.bucket_name,
        &cfg.region,
    )
    .await?;
    println!("{report}");
    Ok(())
}
