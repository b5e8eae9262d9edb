//! What a spec refers to must exist before it is planned: each instance's DB subnet group, parameter group,
//! option group and storage key. A name that is wrong is `InvalidInput` naming the field, before anything
//! changes; RDS would refuse it only half-way through an apply.

use opsplane_shared::OpsError;
use opsplane_shared::domain::spec::EnvironmentSpec;

use crate::Deps;

/// Refuses `spec` when any group or key it names does not exist, naming the first such field.
pub async fn check(deps: &Deps, spec: &EnvironmentSpec) -> Result<(), OpsError> {
    for (i, db) in spec.rds.iter().enumerate() {
        if let Some((field, reason)) = deps.rds.missing_groups(db).await?.into_iter().next() {
            return Err(OpsError::invalid(
                format!("rds[{i}].{field}"),
                format!("{reason}: create it first, or name one that exists"),
            ));
        }
        if let Some(key) = &db.kms_key_id
            && deps.keys.arn(key).await?.is_none()
        {
            return Err(OpsError::invalid(
                format!("rds[{i}].kms_key_id"),
                format!(
                    "no KMS key \"{key}\" in this Region: create it first, or name one that exists"
                ),
            ));
        }
    }
    Ok(())
}
