//! The drill's first step: validate the request against the spec and fix the drill's plan (targets, mode,
//! scratch names).

use chrono::{DateTime, Utc};
use opsplane_shared::OpsError;
use opsplane_shared::aws::rds::Network;
use opsplane_shared::domain::backup::key_timestamp;
use opsplane_shared::domain::drill::{RestoreMode, Targets, scratch_identifier};
use opsplane_shared::domain::spec::DrillPlacement;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::cache::{CacheDrill, plan_cache};
use crate::{Deps, short_id};

/// `validate-drill`: the workflow's input and the execution.
#[derive(Debug, Deserialize)]
pub struct ValidateInput {
    /// The workflow's input, as given.
    pub input: Value,
    /// `$$.Execution.Id`.
    pub execution: String,
}

/// The drill's plan: everything later steps need, small.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillPlan {
    /// The environment.
    pub environment: String,
    /// The drill's id (derived from the execution).
    pub drill_id: String,
    /// The report's key: timestamp and id (`20260101T000000Z-<id>`).
    pub ts: String,
    /// When the drill started: the reference for RPO.
    pub started_at: DateTime<Utc>,
    /// The source instance.
    pub instance: String,
    /// Snapshot or point in time.
    pub mode: RestoreMode,
    /// The scratch instance's identifier (known before the restore, so teardown always knows it).
    pub scratch_id: String,
    /// The scratch instance's class.
    pub instance_class: String,
    /// The targets.
    pub targets: Targets,
    /// Where the scratch instance is restored ([`placement`]).
    #[serde(default)]
    pub network: Network,
    /// The Redis replication group drilled beside the instance, when the environment has one.
    #[serde(default)]
    pub cache: Option<CacheDrill>,
}

/// Checks the input against the spec; touches nothing.
pub async fn validate(deps: &Deps, input: ValidateInput) -> Result<DrillPlan, OpsError> {
    let (obj, environment) = opsplane_shared::boundary::workflow_input(
        &input.input,
        &["mode", "instance", "replication_group"],
        "the drill takes `environment`, and optionally `mode`, `instance`, `replication_group` and the \
         object `github`",
    )?;
    let mode = match obj.get("mode") {
        None | Some(Value::Null) => RestoreMode::Snapshot,
        Some(v) => serde_json::from_value(v.clone()).map_err(|_| {
            OpsError::invalid(
                "mode",
                format!("{v} is not a mode: use \"snapshot\" or \"point-in-time\""),
            )
        })?,
    };
    let spec = deps.spec(environment).await?;
    let instance = match obj.get("instance") {
        None | Some(Value::Null) => {
            spec.rds
                .first()
                .map(|d| d.identifier.clone())
                .ok_or_else(|| {
                    OpsError::invalid(
                        "environment",
                        format!("the spec of `{environment}` has no rds instance to drill"),
                    )
                })?
        }
        Some(Value::String(i)) if spec.instance(i).is_some() => i.clone(),
        Some(v) => {
            return Err(OpsError::invalid(
                "instance",
                format!(
                    "{v} is not an instance of `{environment}`; one of {}",
                    spec.rds
                        .iter()
                        .map(|d| d.identifier.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    };
    let policy = spec.drill.as_ref().ok_or_else(|| {
        OpsError::invalid(
            "environment",
            format!("the spec of `{environment}` has no `drill` section: add rto_target_minutes, rpo_target_minutes and instance_class"),
        )
    })?;
    let network = placement(&instance, environment, policy.placement.as_ref(), deps).await?;
    let started_at = deps.now();
    let drill_id = short_id(&input.execution);
    let cache = plan_cache(deps, &spec, obj.get("replication_group"), &drill_id).await?;
    Ok(DrillPlan {
        environment: environment.to_owned(),
        scratch_id: scratch_identifier(&instance, &drill_id),
        // The id keeps two drills within one second apart; the timestamp first keeps keys in time order.
        ts: format!("{}-{drill_id}", key_timestamp(started_at)),
        drill_id,
        started_at,
        instance,
        mode,
        instance_class: policy.instance_class.clone(),
        targets: Targets::from(policy),
        network,
        cache,
    })
}

/// Where the scratch instance goes: beside the source instance (its DB subnet group, security groups,
/// parameter and option groups, read now), each field the spec's `drill.placement` sets taking
/// precedence. A source that cannot be read (deleted) needs `drill.placement` with a DB subnet group
/// and security groups, or the drill ends here, before restoring anything: a restore that names neither
/// lands in the default VPC, out of the probe's reach, or is refused where the account has none
/// (RestoreDBInstanceFromDBSnapshot API reference, DBSubnetGroupName).
async fn placement(
    instance: &str,
    environment: &str,
    placement: Option<&DrillPlacement>,
    deps: &Deps,
) -> Result<Network, OpsError> {
    let given = placement.cloned().unwrap_or_default();
    let read = match deps.rds.instance(instance).await? {
        Some(source) => source.network,
        None if given.db_subnet_group.is_some() && !given.vpc_security_group_ids.is_empty() => {
            Network::default()
        }
        None => {
            return Err(OpsError::invalid(
                "drill.placement",
                format!(
                    "the source instance `{instance}` cannot be read, so the drill cannot restore beside it: \
                     set drill.placement.db_subnet_group and drill.placement.vpc_security_group_ids in the \
                     spec of `{environment}` to the network the probe reaches"
                ),
            ));
        }
    };
    Ok(Network {
        subnet_group: given.db_subnet_group.or(read.subnet_group),
        security_group_ids: if given.vpc_security_group_ids.is_empty() {
            read.security_group_ids
        } else {
            given.vpc_security_group_ids
        },
        parameter_group: given.parameter_group.or(read.parameter_group),
        option_group: given.option_group.or(read.option_group),
    })
}
