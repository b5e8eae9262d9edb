//! `opsplane lock status` and `opsplane lock release --force`.
//!
//! The backend is the one the functions use: `OPSPLANE_LOCK_BACKEND` (`dynamodb`, the default, or `s3`).
//! A forced release is written to the audit log with the operator's identity: `--actor` when given, else
//! `$USER@<host>`. It is a plain, documented string rather than an STS lookup, so that it also works against
//! moto and shows who typed the command even when everyone assumes the same role.

use std::sync::Arc;

use anyhow::{Result, bail};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use opsplane_shared::aws::Clients;
use opsplane_shared::aws::sfn::SfnExecutions;
use opsplane_shared::lock::{self, LockInfo};

use crate::Target;

/// `opsplane lock ...`.
#[derive(Debug, Subcommand)]
pub enum LockCommand {
    /// Show held locks: holder, operation, fencing token, age and lease (OPSPLANE_LOCK_BACKEND picks the backend).
    Status(StatusArgs),
    /// Release an environment's lock whoever holds it; needs --force and a --reason, and is audited.
    Release(ReleaseArgs),
}

/// `opsplane lock status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this environment (default: every held lock).
    #[arg(long = "env")]
    environment: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: Target,
}

/// `opsplane lock release`.
#[derive(Debug, Args)]
pub struct ReleaseArgs {
    /// The environment whose lock to release.
    #[arg(long = "env")]
    environment: String,
    /// Confirm: the holder may still be running, and loses its lock (its later writes fail with LockLost).
    #[arg(long)]
    force: bool,
    /// Why, for the audit log.
    #[arg(long)]
    reason: Option<String>,
    /// Who is releasing it, for the audit log (default: $USER@<host>).
    #[arg(long)]
    actor: Option<String>,
    #[command(flatten)]
    target: Target,
}

/// Runs a `lock` subcommand.
pub async fn run(cmd: LockCommand) -> Result<()> {
    match cmd {
        LockCommand::Status(args) => status(args).await,
        LockCommand::Release(args) => release(args).await,
    }
}

async fn backend(target: &Target) -> Result<Arc<dyn lock::Lock>> {
    let cfg = target.config()?;
    let clients = Clients::load(&cfg).await;
    let executions = Arc::new(SfnExecutions::new(clients.sfn.clone()));
    Ok(lock::from_config(&cfg, &clients, executions))
}

async fn status(args: StatusArgs) -> Result<()> {
    if let Some(env) = &args.environment {
        lock::validate_environment(env).map_err(|e| anyhow::anyhow!("--env: {e}"))?;
    }
    let lock = backend(&args.target).await?;
    let locks = match &args.environment {
        Some(env) => lock.status(env).await?.into_iter().collect(),
        None => lock.list().await?,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&locks)?);
        return Ok(());
    }
    print!("{}", table(&locks, Utc::now()));
    Ok(())
}

/// The checked arguments of a forced release: environment, actor, reason. Nothing is touched before this.
fn checked_release(args: &ReleaseArgs) -> Result<(String, String, String)> {
    lock::validate_environment(&args.environment).map_err(|e| anyhow::anyhow!("--env: {e}"))?;
    if !args.force {
        bail!(
            "refusing to release the lock of `{}` without --force: its holder may still be running and will \
             lose the lock; check `opsplane lock status --env {}` first",
            args.environment,
            args.environment
        );
    }
    let reason = args.reason.as_deref().map(str::trim).unwrap_or_default();
    if reason.is_empty() {
        bail!("--reason is required: say why the lock is released, for the audit log");
    }
    let actor = match args.actor.as_deref().map(str::trim) {
        Some(a) if !a.is_empty() => a.to_owned(),
        _ => default_actor(),
    };
    Ok((args.environment.clone(), actor, reason.to_owned()))
}

fn default_actor() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned());
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned());
    format!("{user}@{host}")
}

async fn release(args: ReleaseArgs) -> Result<()> {
    let (environment, actor, reason) = checked_release(&args)?;
    let lock = backend(&args.target).await?;
    match lock.force_release(&environment, &actor, &reason).await? {
        Some(released) => println!(
            "released the lock of {environment} held by {} ({}, token {}); recorded in the audit log as {actor}",
            released.holder, released.operation, released.token
        ),
        None => println!("{environment} was not locked; the attempt is recorded in the audit log"),
    }
    Ok(())
}

/// Locks as a table; an empty list says so.
fn table(locks: &[LockInfo], now: DateTime<Utc>) -> String {
    if locks.is_empty() {
        return "no environment is locked\n".to_owned();
    }
    let mut out = format!(
        "{:<16} {:<10} {:>6} {:>8}  {:<18} HOLDER\n",
        "ENVIRONMENT", "OPERATION", "TOKEN", "AGE", "LEASE"
    );
    for l in locks {
        let lease = if l.lease_expires_at > now {
            format!("ends in {}", human(l.lease_expires_at - now))
        } else {
            format!("EXPIRED {} ago", human(now - l.lease_expires_at))
        };
        out.push_str(&format!(
            "{:<16} {:<10} {:>6} {:>8}  {:<18} {}\n",
            l.environment,
            l.operation,
            l.token,
            human(now - l.acquired_at),
            lease,
            l.holder
        ));
    }
    out
}

/// A duration as `45s`, `12m`, `3h05m` or `2d04h`.
fn human(d: chrono::TimeDelta) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: LockCommand,
    }

    fn release_args(argv: &[&str]) -> ReleaseArgs {
        let mut full = vec!["lock", "release"];
        full.extend_from_slice(argv);
        match Cli::try_parse_from(full).unwrap().cmd {
            LockCommand::Release(args) => args,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn release_needs_force_and_a_reason() {
        let err =
            checked_release(&release_args(&["--env", "prod", "--reason", "stuck"])).unwrap_err();
        assert!(err.to_string().contains("without --force"), "{err}");
        let err = checked_release(&release_args(&["--env", "prod", "--force"])).unwrap_err();
        assert!(err.to_string().contains("--reason is required"), "{err}");
        let err = checked_release(&release_args(&[
            "--env", "prod", "--force", "--reason", "  ",
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("--reason"), "{err}");
        let err = checked_release(&release_args(&[
            "--env", "Prod!", "--force", "--reason", "x",
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("--env"), "{err}");
        let ok = checked_release(&release_args(&[
            "--env",
            "prod",
            "--force",
            "--reason",
            "region outage",
            "--actor",
            "alice",
        ]))
        .unwrap();
        assert_eq!(ok, ("prod".into(), "alice".into(), "region outage".into()));
        let (_, actor, _) = checked_release(&release_args(&[
            "--env", "prod", "--force", "--reason", "x",
        ]))
        .unwrap();
        assert!(actor.contains('@'), "{actor}");
    }

    #[test]
    fn status_table_shows_age_and_lease() {
        let now = Utc::now();
        let held = LockInfo {
            environment: "prod".into(),
            holder: "arn:aws:states:us-east-1:1:execution:backup:run-1".into(),
            operation: "backup".into(),
            token: 12,
            acquired_at: now - TimeDelta::seconds(3725),
            lease_expires_at: now + TimeDelta::seconds(600),
        };
        let expired = LockInfo {
            environment: "dev".into(),
            lease_expires_at: now - TimeDelta::seconds(90),
            ..held.clone()
        };
        let out = table(&[held, expired], now);
        assert!(out.contains("1h02m"), "{out}");
        assert!(out.contains("ends in 10m"), "{out}");
        assert!(out.contains("EXPIRED 1m ago"), "{out}");
        assert!(out.contains("execution:backup:run-1"), "{out}");
        assert_eq!(table(&[], now), "no environment is locked\n");
        assert_eq!(human(TimeDelta::seconds(2 * 86_400 + 4 * 3600)), "2d04h");
    }
}
