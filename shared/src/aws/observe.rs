//! What exists of an environment: its spec's RDS instances and EKS cluster as the planner and the health
//! check see them, described in one pass.

use crate::aws::eks::Eks;
use crate::aws::rds::Rds;
use crate::domain::plan::ActualState;
use crate::domain::spec::EnvironmentSpec;
use crate::error::OpsError;

/// Describes every instance the spec names and its cluster; absent ones are simply not in the result.
pub async fn observe(
    rds: &Rds,
    eks: &Eks,
    spec: &EnvironmentSpec,
) -> Result<ActualState, OpsError> {
    let mut instances = Vec::with_capacity(spec.rds.len());
    for db in &spec.rds {
        if let Some(found) = rds.actual(&db.identifier).await? {
            instances.push(found);
        }
    }
    let cluster = match &spec.eks {
        Some(e) => eks.actual(&e.cluster).await?,
        None => None,
    };
    Ok(ActualState { instances, cluster })
}
