//! What exists of an environment: its spec's RDS instances, EKS cluster and Redis replication groups as the
//! planner and the health check see them, described in one pass.

use crate::aws::eks::Eks;
use crate::aws::elasticache::Caches;
use crate::aws::rds::Rds;
use crate::domain::plan::ActualState;
use crate::domain::spec::EnvironmentSpec;
use crate::error::OpsError;

/// Describes every instance, cluster and replication group the spec names; absent ones are simply not in
/// the result.
pub async fn observe(
    (rds, eks, caches): (&Rds, &Eks, &Caches),
    spec: &EnvironmentSpec,
) -> Result<ActualState, OpsError> {
    let mut instances = Vec::with_capacity(spec.rds.len());
    for db in &spec.rds {
        if let Some(found) = rds.actual(&db.identifier).await? {
            instances.push(found);
        }
    }
    let mut cluster = match &spec.eks {
        Some(e) => eks.actual(&e.cluster).await?,
        None => None,
    };
    // Add-ons and access entries are read only for a spec that names some: each costs a call per item.
    if let (Some(e), Some(c)) = (&spec.eks, cluster.as_mut()) {
        if !e.addons.is_empty() {
            c.addons = eks.addons(&e.cluster).await?;
        }
        if !e.access_entries.is_empty() {
            c.access_entries = eks.access_entries(&e.cluster).await?;
        }
    }
    let mut replication_groups = Vec::with_capacity(spec.redis.len());
    for group in &spec.redis {
        if let Some(found) = caches.actual(&group.replication_group_id).await? {
            replication_groups.push(found);
        }
    }
    Ok(ActualState {
        instances,
        cluster,
        replication_groups,
    })
}
