//! `opsplane plan --env E --spec FILE` and `opsplane drift --env E`: what a provision would change, and what
//! changed behind opsplane's back. Both only read.

use std::path::Path;

use anyhow::{Context, Result, bail};
use opsplane_shared::aws::Clients;
use opsplane_shared::aws::eks::Eks;
use opsplane_shared::aws::elasticache::Caches;
use opsplane_shared::aws::observe::observe;
use opsplane_shared::aws::rds::Rds;
use opsplane_shared::domain::plan::{Plan, plan};
use opsplane_shared::domain::spec::EnvironmentSpec;

/// Reads `spec` (every error names the file and the field), checks it describes `environment`, and plans
/// it against what RDS, EKS and ElastiCache describe. Changes nothing.
pub async fn plan_file(clients: &Clients, environment: &str, spec: &Path) -> Result<Plan> {
    let parsed = EnvironmentSpec::parse_file(spec)?;
    if parsed.environment != environment {
        bail!(
            "{}: describes environment \"{}\", not --env \"{environment}\"",
            spec.display(),
            parsed.environment
        );
    }
    let rds = Rds::new(clients.rds.clone());
    let eks = Eks::new(clients.eks.clone());
    let caches = Caches::new(clients.elasticache.clone());
    let actual = observe((&rds, &eks, &caches), &parsed)
        .await
        .with_context(|| format!("describing {environment}'s resources"))?;
    Ok(plan(&parsed, &actual))
}

/// The plan an approval waits on, as `opsplane approve|reject` shows it before deciding: its table and its
/// SHA-256 (pass it as `--plan-sha256` to decide on exactly this plan).
pub fn render_waiting(plan: &serde_json::Value, sha256: Option<&str>) -> String {
    let table = serde_json::from_value::<Plan>(plan.clone())
        .map(|p| p.render_table())
        .unwrap_or_else(|_| format!("{plan}\n"));
    format!(
        "{table}plan SHA-256: {}",
        sha256.unwrap_or("(not recorded)")
    )
}
