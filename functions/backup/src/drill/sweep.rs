//! Sweeping orphans: drill instances and replication groups an earlier drill left behind, deleted once
//! older than the threshold.

use chrono::Duration;
use opsplane_shared::OpsError;
use opsplane_shared::domain::backup::{
    MANAGED_BY_VALUE, TAG_DRILL, TAG_ENVIRONMENT, TAG_MANAGED_BY,
};
use serde::{Deserialize, Serialize};

use crate::Deps;

/// Drill instances older than this are orphans when the sweep is not told otherwise.
pub const DEFAULT_ORPHAN_MINUTES: u64 = 360;

/// `sweep-orphans`.
#[derive(Debug, Default, Deserialize)]
pub struct SweepInput {
    /// Only this environment's drill instances (every environment's when absent).
    #[serde(default)]
    pub environment: Option<String>,
    /// Drill instances older than this are deleted ([`DEFAULT_ORPHAN_MINUTES`] when absent).
    #[serde(default)]
    pub older_than_minutes: Option<u64>,
}

/// What the sweep deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepOutput {
    /// Instances and replication groups deleted.
    pub deleted: Vec<String>,
}

/// Deletes drill scratch instances (opsplane's drill tag and `ManagedBy=opsplane`) older than the limit, so a
/// drill whose execution died leaves no bill running. Nothing else is ever touched.
pub async fn sweep_orphans(deps: &Deps, input: SweepInput) -> Result<SweepOutput, OpsError> {
    let minutes = input.older_than_minutes.unwrap_or(DEFAULT_ORPHAN_MINUTES);
    if minutes == 0 {
        return Err(OpsError::invalid(
            "older_than_minutes",
            "must be at least 1: a running drill's instance must not be swept",
        ));
    }
    let cutoff = deps.now() - Duration::minutes(minutes as i64);
    let mut deleted = Vec::new();
    for i in deps.rds.instances_tagged(TAG_DRILL).await? {
        let ours = i.tags.get(TAG_MANAGED_BY).map(String::as_str) == Some(MANAGED_BY_VALUE);
        let old = i.created_at.is_some_and(|at| at < cutoff);
        if let Some(env) = &input.environment
            && i.tags.get(TAG_ENVIRONMENT) != Some(env)
        {
            continue;
        }
        if ours && old && i.status != "deleting" && deps.rds.delete_instance(&i.id).await? {
            tracing::warn!(instance = %i.id, drill = ?i.tags.get(TAG_DRILL), "orphaned drill instance deleted");
            deleted.push(i.id);
        }
    }
    // Scratch replication groups likewise (every drill's id starts `drill-`; the tags decide).
    for g in deps.caches.groups_named("drill-").await? {
        let ours = g.tags.get(TAG_MANAGED_BY).map(String::as_str) == Some(MANAGED_BY_VALUE)
            && g.tags.contains_key(TAG_DRILL);
        let old = g.created_at.is_some_and(|at| at < cutoff);
        if let Some(env) = &input.environment
            && g.tags.get(TAG_ENVIRONMENT) != Some(env)
        {
            continue;
        }
        if ours && old && g.status == "available" && deps.caches.delete(&g.id).await? {
            tracing::warn!(group = %g.id, drill = ?g.tags.get(TAG_DRILL), "orphaned drill replication group deleted");
            deleted.push(g.id);
        }
    }
    Ok(SweepOutput { deleted })
}
