//! What a spec refers to must exist before it is planned: each instance's DB subnet group, parameter group,
//! option group, security groups and storage key, each Redis group's cache subnet group, security groups
//! and key, and the EKS cluster's subnets and security groups and its node groups' launch templates. A
//! name that is wrong is `InvalidInput` naming the field, before anything changes; RDS, EKS and ElastiCache
//! would refuse it only half-way through an apply.

use opsplane_shared::OpsError;
use opsplane_shared::aws::ec2_resources::Ec2Kind;
use opsplane_shared::domain::spec::EnvironmentSpec;

use crate::Deps;

/// Refuses `spec` when any group, subnet, template or key it names does not exist, naming the first such
/// field.
pub async fn check(deps: &Deps, spec: &EnvironmentSpec) -> Result<(), OpsError> {
    for (i, db) in spec.rds.iter().enumerate() {
        if let Some((field, reason)) = deps.rds.missing_groups(db).await?.into_iter().next() {
            return Err(OpsError::invalid(
                format!("rds[{i}].{field}"),
                format!("{reason}: create it first, or name one that exists"),
            ));
        }
        let groups = &db.vpc_security_group_ids;
        exist(
            deps,
            Ec2Kind::SecurityGroup,
            &format!("rds[{i}].vpc_security_group_ids"),
            groups,
        )
        .await?;
        key_exists(
            deps,
            &format!("rds[{i}].kms_key_id"),
            db.kms_key_id.as_deref(),
        )
        .await?;
    }
    for (i, group) in spec.redis.iter().enumerate() {
        if let Some(name) = &group.cache_subnet_group
            && !deps.caches.subnet_group_exists(name).await?
        {
            return Err(absent(
                &format!("redis[{i}].cache_subnet_group"),
                "cache subnet group",
                name,
            ));
        }
        let field = format!("redis[{i}].security_group_ids");
        exist(
            deps,
            Ec2Kind::SecurityGroup,
            &field,
            &group.security_group_ids,
        )
        .await?;
        let key = group.kms_key_id.as_deref();
        key_exists(deps, &format!("redis[{i}].kms_key_id"), key).await?;
    }
    if let Some(eks) = &spec.eks {
        exist(deps, Ec2Kind::Subnet, "eks.subnet_ids", &eks.subnet_ids).await?;
        exist(
            deps,
            Ec2Kind::SecurityGroup,
            "eks.security_group_ids",
            &eks.security_group_ids,
        )
        .await?;
        for (i, ng) in eks.nodegroups.iter().enumerate() {
            let Some(template) = &ng.launch_template else {
                continue;
            };
            let field = format!("eks.nodegroups[{i}].launch_template");
            let (found, named) = match (&template.id, &template.name) {
                (Some(id), _) => (deps.ec2.exists(Ec2Kind::LaunchTemplate, id).await?, id),
                (None, Some(name)) => (deps.ec2.launch_template_named(name).await?, name),
                // The spec's own check requires one of the two.
                (None, None) => continue,
            };
            if !found {
                return Err(absent(&field, Ec2Kind::LaunchTemplate.noun(), named));
            }
        }
    }
    Ok(())
}

/// Refuses the KMS key `key` (the one at `field`) when this Region has none of that reference.
async fn key_exists(deps: &Deps, field: &str, key: Option<&str>) -> Result<(), OpsError> {
    match key {
        Some(key) if deps.keys.arn(key).await?.is_none() => Err(absent(field, "KMS key", key)),
        _ => Ok(()),
    }
}

/// Refuses the first of `ids` (the list at `field`) that names no `kind` in this Region.
async fn exist(deps: &Deps, kind: Ec2Kind, field: &str, ids: &[String]) -> Result<(), OpsError> {
    for (j, id) in ids.iter().enumerate() {
        if !deps.ec2.exists(kind, id).await? {
            return Err(absent(&format!("{field}[{j}]"), kind.noun(), id));
        }
    }
    Ok(())
}

/// The refusal of the `noun` named `name` at `field`, which this Region does not have.
fn absent(field: &str, noun: &str, name: &str) -> OpsError {
    OpsError::invalid(
        field,
        format!("no {noun} \"{name}\" in this Region: create it first, or name one that exists"),
    )
}
