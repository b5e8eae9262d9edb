//! What rebuilding the EKS cluster from a backup would take: the spec planned against the cluster as the
//! backup exported it. A drill restores the databases for real; the cluster, which takes tens of minutes
//! and an account's capacity to rebuild, it plans, so that a spec a rebuild could not reach (an add-on
//! the spec would take back to an older version, a node group setting fixed at creation) is found in
//! the drill and not during the disaster.

use opsplane_shared::OpsError;
use opsplane_shared::domain::backup::Manifest;
use opsplane_shared::domain::drill::Check;
use opsplane_shared::domain::plan::{ActualCluster, ActualState, plan};
use opsplane_shared::domain::spec::EnvironmentSpec;

use crate::Deps;

/// The name of the check in the drill's report.
pub const CHECK: &str = "eks-rebuild-plan";

/// Adds the rebuild plan's check when the environment has a cluster.
pub(super) async fn check_rebuild(
    deps: &Deps,
    spec: &EnvironmentSpec,
    manifest: &Manifest,
    checks: &mut Vec<Check>,
) -> Result<(), OpsError> {
    if spec.eks.is_none() {
        return Ok(());
    }
    let Some(object) = manifest
        .objects
        .iter()
        .find(|o| o.key.ends_with("/eks.json"))
    else {
        checks.push(Check::new(
            CHECK,
            false,
            "the backup holds no EKS export to rebuild from",
        ));
        return Ok(());
    };
    // A missing or altered export is already a failed object check; it is not planned against.
    let Some(bytes) = deps.objects.get(&object.key).await? else {
        return Ok(());
    };
    let exported: Option<ActualCluster> = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|doc| serde_json::from_value(doc["planned"].clone()).ok());
    let Some(cluster) = exported else {
        checks.push(Check::new(
            CHECK,
            false,
            format!("{} holds no cluster to plan a rebuild against", object.key),
        ));
        return Ok(());
    };
    let mut cluster_only = spec.clone();
    cluster_only.rds.clear();
    cluster_only.redis.clear();
    let p = plan(
        &cluster_only,
        &ActualState {
            cluster: Some(cluster),
            ..ActualState::default()
        },
    );
    let lines: Vec<String> = p
        .changes
        .iter()
        .map(|c| {
            let from = c.from.as_deref().unwrap_or("(absent)");
            format!("{} {}: {from} -> {}", c.resource, c.field, c.to)
        })
        .chain(
            p.blocking()
                .map(|f| format!("BLOCKED {} [{}] {}", f.resource, f.rule, f.message)),
        )
        .collect();
    let detail = if lines.is_empty() {
        format!(
            "the spec plans cleanly against {}: a rebuild needs nothing more",
            object.key
        )
    } else {
        format!(
            "a rebuild from {} would need: {}",
            object.key,
            lines.join("; ")
        )
    };
    checks.push(Check::new(CHECK, !p.blocked, detail));
    Ok(())
}
