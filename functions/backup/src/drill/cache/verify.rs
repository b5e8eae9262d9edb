//! Verifying and measuring the restored replication group: available with an endpoint and the scratch
//! settings, its snapshot listed in the backup's manifest with its description's digest, and the Redis probe
//! (`PING`, the canary key) answering over the source's TLS with the source's AUTH token.

use opsplane_shared::OpsError;
use opsplane_shared::domain::drill::{Check, Measurement, RpoSource, restore_window};
use opsplane_shared::domain::readable::yes_no;
use opsplane_shared::probe::redis::probe_by_reference;
use serde::Deserialize;

use super::super::validate::DrillPlan;
use super::super::verify::{Verification, check_listed, check_object, failed, read_manifest};
use super::{CachePick, cache_of};
use crate::Deps;

/// The state that requests the Redis restore; its RTO starts when it is entered.
pub const RESTORE_CACHE_STATE: &str = "RestoreCache";
/// The state that polls the Redis restore; its RTO ends when it exits.
pub const WAIT_CACHE_RESTORE_STATE: &str = "WaitCacheRestore";

/// `verify-cache`.
#[derive(Debug, Deserialize)]
pub struct VerifyCacheInput {
    /// The plan.
    pub plan: DrillPlan,
    /// What was restored.
    pub pick: CachePick,
}

/// Verifies the scratch group; any failed check is `RestoreFailed`, naming it.
pub async fn verify_cache(deps: &Deps, input: VerifyCacheInput) -> Result<Verification, OpsError> {
    let plan = &input.plan;
    let cache = cache_of(plan)?;
    let scratch = &cache.scratch;
    let id = &scratch.replication_group_id;
    let mut checks = Vec::new();
    let group = deps.caches.actual(id).await?;
    let endpoint = match &group {
        Some(g) if g.status == "available" && g.endpoint.is_some() => {
            let (h, p) = g.endpoint.clone().unwrap_or_default();
            checks.push(Check::new(
                "cache-available",
                true,
                format!("{id} at {h}:{p}"),
            ));
            Some((h, p))
        }
        Some(g) => {
            checks.push(Check::new(
                "cache-available",
                false,
                format!("{id} is {} without endpoint", g.status),
            ));
            None
        }
        None => {
            checks.push(Check::new(
                "cache-available",
                false,
                format!("{id} does not exist"),
            ));
            None
        }
    };
    let transit = scratch.transit_encryption == Some(true);
    if let Some(g) = &group {
        let node_type = g.node_type.as_deref().unwrap_or_default();
        checks.push(Check::new(
            "cache-settings",
            node_type == scratch.node_type && g.transit_encryption == transit,
            format!(
                "node type {node_type} (want {}), in-transit encryption {} (want {})",
                scratch.node_type,
                yes_no(Some(g.transit_encryption)),
                yes_no(Some(transit))
            ),
        ));
    }
    let pick = &input.pick;
    if let Some(manifest) = read_manifest(
        deps,
        pick.manifest_key.as_deref(),
        pick.manifest_sha256.as_deref(),
        &mut checks,
    )
    .await?
    {
        let listed = manifest
            .caches
            .iter()
            .find(|s| s.snapshot_id == pick.snapshot_id);
        check_listed(
            "cache-snapshot-in-manifest",
            &pick.snapshot_id,
            listed.is_some(),
            &mut checks,
        );
        if let Some(s) = listed {
            check_object(deps, &s.description, &mut checks).await?;
        }
    }
    let spec = deps.spec(&plan.environment).await?;
    let mut canary_newest = None;
    if let Some(probe) = spec.drill.as_ref().and_then(|d| d.redis_probe.as_ref()) {
        let target = opsplane_shared::probe::cache_target(&deps.probe_settings, id, endpoint).await;
        match target {
            Err(why) => checks.push(Check::new("redis-probe", false, why)),
            Ok(endpoint) => match probe_by_reference(
                deps.credentials.secrets.as_ref(),
                deps.cache_probe.as_ref(),
                scratch.auth_token_secret.as_deref(),
                endpoint,
                transit,
                probe.canary_key.clone(),
            )
            .await
            {
                Ok((answer, detail)) => {
                    checks.push(Check::new("redis-probe", true, detail));
                    if let Some(key) = &probe.canary_key {
                        checks.push(Check::new(
                            "cache-canary",
                            answer.canary_newest.is_some(),
                            match answer.canary_newest {
                                Some(at) => format!("{key}: newest write {}", at.to_rfc3339()),
                                None => format!("{key} holds no value"),
                            },
                        ));
                    }
                    canary_newest = answer.canary_newest;
                }
                Err(why) => checks.push(Check::new("redis-probe", false, why)),
            },
        }
    }
    failed(&checks)?;
    Ok(Verification {
        checks,
        canary_newest,
    })
}

/// `measure-cache`.
#[derive(Debug, Deserialize)]
pub struct MeasureCacheInput {
    /// `$$.Execution.Id`.
    pub execution: String,
    /// The plan.
    pub plan: DrillPlan,
    /// What was restored.
    pub pick: CachePick,
    /// What verification found.
    pub verify: Verification,
}

/// The Redis restore's RTO from the execution's events and its RPO from the snapshot (or the canary).
pub async fn measure_cache(deps: &Deps, input: MeasureCacheInput) -> Result<Measurement, OpsError> {
    let events = crate::history::state_events(deps.history.as_ref(), &input.execution).await?;
    let (requested, available) =
        restore_window(&events, RESTORE_CACHE_STATE, WAIT_CACHE_RESTORE_STATE)
            .map_err(|e| OpsError::Internal(e.to_string()))?;
    Ok(opsplane_shared::domain::drill::measure(
        requested,
        available,
        input.plan.started_at,
        (input.pick.recovery_point, RpoSource::Snapshot),
        input.verify.canary_newest,
        input.plan.targets,
    ))
}
