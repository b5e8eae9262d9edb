//! The drill's Redis part, beside the RDS one: the newest opsplane snapshot of a replication group restored
//! to a scratch group in the source's cache subnet group and security groups (with its encryption and AUTH
//! token, so that the probe reaches it as it reaches the source), polled until available, verified, measured
//! and deleted on every path.

mod verify;

pub use verify::{
    MeasureCacheInput, RESTORE_CACHE_STATE, VerifyCacheInput, WAIT_CACHE_RESTORE_STATE,
    measure_cache, verify_cache,
};

use chrono::{DateTime, Utc};
use opsplane_shared::OpsError;
use opsplane_shared::aws::elasticache::CachesError;
use opsplane_shared::domain::backup::TAG_DRILL;
use opsplane_shared::domain::drill::scratch_cache_identifier;
use opsplane_shared::domain::spec::{EnvironmentSpec, RedisSpec};
use opsplane_shared::secrets::parse_secret;
use opsplane_shared::state::BackupRecord;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::restore::drill_tags;
use super::teardown::TeardownOutput;
use super::validate::DrillPlan;
use crate::Deps;

/// What the drill does with one replication group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheDrill {
    /// The source replication group.
    pub source: String,
    /// The scratch group as it is made: the source's node type, engine version, shards, network and
    /// encryption as they run now (the spec's where the source cannot be read), and no replica beyond
    /// what cluster mode needs.
    pub scratch: RedisSpec,
}

/// Prefix of every replication group a drill makes: `drill-<drill id>-`.
fn drill_prefix(drill_id: &str) -> String {
    format!("drill-{drill_id}-")
}

/// The drill's Redis part for the spec: the group `requested` (the input's `replication_group`) or the
/// spec's first, `None` when the environment has no Redis.
pub async fn plan_cache(
    deps: &Deps,
    spec: &EnvironmentSpec,
    requested: Option<&Value>,
    drill_id: &str,
) -> Result<Option<CacheDrill>, OpsError> {
    let known = || {
        spec.redis
            .iter()
            .map(|r| r.replication_group_id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let want = match requested {
        None | Some(Value::Null) => match spec.redis.first() {
            Some(r) => r,
            None => return Ok(None),
        },
        Some(Value::String(id)) => spec.cache(id).ok_or_else(|| {
            OpsError::invalid(
                "replication_group",
                format!(
                    "\"{id}\" is not a replication group of `{}`; one of: {}",
                    spec.environment,
                    known()
                ),
            )
        })?,
        Some(v) => {
            return Err(OpsError::invalid(
                "replication_group",
                format!("{v} is not a replication group id; one of: {}", known()),
            ));
        }
    };
    let mut scratch = want.clone();
    scratch.replication_group_id = scratch_cache_identifier(&want.replication_group_id, drill_id);
    if let Some(source) = deps.caches.actual(&want.replication_group_id).await? {
        scratch.node_type = source.node_type.unwrap_or(scratch.node_type);
        scratch.engine_version = source.engine_version.or(scratch.engine_version);
        scratch.num_node_groups = source.num_node_groups.max(1);
        scratch.cache_subnet_group = source.cache_subnet_group.or(scratch.cache_subnet_group);
        if !source.security_group_ids.is_empty() {
            scratch.security_group_ids = source.security_group_ids;
        }
        scratch.parameter_group = source.parameter_group.or(scratch.parameter_group);
        scratch.at_rest_encryption = Some(source.at_rest_encryption);
        scratch.transit_encryption = Some(source.transit_encryption);
        scratch.kms_key_id = if source.at_rest_encryption {
            source.kms_key_id.or(scratch.kms_key_id)
        } else {
            None
        };
    }
    // A replica only where cluster mode needs one for its automatic failover: the drill measures the
    // restore, not the replicas' sync.
    scratch.replicas_per_node_group = u32::from(scratch.cluster_mode());
    Ok(Some(CacheDrill {
        source: want.replication_group_id.clone(),
        scratch,
    }))
}

/// The plan's Redis part, or `InvalidInput` when a step of it runs without one.
fn cache_of(plan: &DrillPlan) -> Result<&CacheDrill, OpsError> {
    plan.cache.as_ref().ok_or_else(|| {
        OpsError::invalid(
            "plan.cache",
            "the drill's plan has no replication group: the Redis steps run only when it has one",
        )
    })
}

/// `pick-cache-snapshot`, `check-cache-restore`, `teardown-cache`, `check-cache-teardown`.
#[derive(Debug, Deserialize)]
pub struct CacheInput {
    /// The plan.
    pub plan: DrillPlan,
}

/// The Redis snapshot the drill restores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachePick {
    /// The snapshot.
    pub snapshot_id: String,
    /// When it was taken: the recovery point.
    pub recovery_point: DateTime<Utc>,
    /// The manifest that lists it.
    pub manifest_key: Option<String>,
    /// The manifest's SHA-256 as recorded in the catalog.
    pub manifest_sha256: Option<String>,
}

/// The newest available opsplane snapshot of the source group (Redis has no point-in-time restore: a
/// point-in-time drill restores its instance to the time and its cache from the newest snapshot).
pub async fn pick_cache_snapshot(deps: &Deps, input: CacheInput) -> Result<CachePick, OpsError> {
    let plan = &input.plan;
    let cache = cache_of(plan)?;
    let newest = deps
        .caches
        .manual_snapshots()
        .await?
        .into_iter()
        .filter(|s| s.group == cache.source)
        .filter(|s| s.info().is_ours(&plan.environment) && s.info().is_available())
        .filter(|s| s.created_at.is_some())
        .max_by_key(|s| s.created_at)
        .ok_or_else(|| {
            OpsError::ResourceNotFound(format!(
                "no available opsplane snapshot of the replication group {} in `{}`: run a backup first",
                cache.source, plan.environment
            ))
        })?;
    let records: Vec<BackupRecord> = deps
        .state
        .latest(&plan.environment, 50)
        .await
        .map_err(OpsError::from)?;
    let record = records
        .iter()
        .find(|r| r.snapshot_ids.contains(&newest.name));
    Ok(CachePick {
        recovery_point: newest.created_at.unwrap_or(plan.started_at),
        snapshot_id: newest.name,
        manifest_key: record.and_then(|r| r.manifest_key.clone()),
        manifest_sha256: record.and_then(|r| r.manifest_sha256.clone()),
    })
}

/// `restore-cache`.
#[derive(Debug, Deserialize)]
pub struct RestoreCacheInput {
    /// The plan.
    pub plan: DrillPlan,
    /// What to restore.
    pub pick: CachePick,
}

/// The scratch group, requested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheScratch {
    /// Its id.
    pub scratch_id: String,
}

/// Restores the snapshot to the scratch group, tagged as the drill's, with the source's AUTH token (read
/// from its secret here, sent only to ElastiCache) so the probe logs in as a client of the source would.
pub async fn restore_cache(
    deps: &Deps,
    input: RestoreCacheInput,
) -> Result<CacheScratch, OpsError> {
    let plan = &input.plan;
    let cache = cache_of(plan)?;
    let auth_token = match &cache.scratch.auth_token_secret {
        Some(arn) => {
            let secret = deps.credentials.secrets.secret_string(arn).await?;
            Some(parse_secret(arn, &secret)?.1.expose().to_owned())
        }
        None => None,
    };
    let tags = drill_tags(plan, Some(&input.pick.snapshot_id));
    deps.caches
        .restore(&cache.scratch, &input.pick.snapshot_id, &tags, auth_token)
        .await
        .map_err(|e| match e {
            CachesError::Missing { .. } => OpsError::RestoreFailed(e.to_string()),
            other => other.into(),
        })?;
    tracing::info!(scratch = %cache.scratch.replication_group_id, snapshot = %input.pick.snapshot_id, "cache restore requested");
    Ok(CacheScratch {
        scratch_id: cache.scratch.replication_group_id.clone(),
    })
}

/// The scratch group, available.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheRestored {
    /// Its endpoint, `host:port`.
    pub endpoint: String,
}

/// `NotReady` until the scratch group is available with an endpoint; a failed one is `RestoreFailed`.
pub async fn check_cache_restore(
    deps: &Deps,
    input: CacheInput,
) -> Result<CacheRestored, OpsError> {
    let id = &cache_of(&input.plan)?.scratch.replication_group_id;
    let group = deps.caches.actual(id).await?.ok_or_else(|| {
        OpsError::RestoreFailed(format!("scratch replication group {id} does not exist"))
    })?;
    match (group.status.as_str(), &group.endpoint) {
        ("available", Some((host, port))) => Ok(CacheRestored {
            endpoint: format!("{host}:{port}"),
        }),
        (s @ ("create-failed" | "deleting"), _) => Err(OpsError::RestoreFailed(format!(
            "scratch replication group {id} is {s}"
        ))),
        (s, _) => Err(OpsError::NotReady(format!(
            "scratch replication group {id} is {s}"
        ))),
    }
}

/// The replication groups of this drill: the scratch group and any other carrying its tag.
async fn drill_groups(
    deps: &Deps,
    plan: &DrillPlan,
) -> Result<Vec<opsplane_shared::domain::plan::ActualReplicationGroup>, OpsError> {
    Ok(deps
        .caches
        .groups_named(&drill_prefix(&plan.drill_id))
        .await?
        .into_iter()
        .filter(|g| g.tags.get(TAG_DRILL) == Some(&plan.drill_id))
        .collect())
}

/// Deletes the scratch group and any other group of this drill, without a final snapshot. Safe to run
/// when nothing was restored; `NotReady` while ElastiCache refuses (a group still creating).
pub async fn teardown_cache(deps: &Deps, input: CacheInput) -> Result<TeardownOutput, OpsError> {
    let plan = &input.plan;
    let scratch = &cache_of(plan)?.scratch.replication_group_id;
    let mut deleted = Vec::new();
    if deps.caches.delete(scratch).await? {
        deleted.push(scratch.clone());
    }
    for g in drill_groups(deps, plan).await? {
        if &g.id != scratch && deps.caches.delete(&g.id).await? {
            deleted.push(g.id);
        }
    }
    tracing::info!(drill = %plan.drill_id, ?deleted, "drill replication groups torn down");
    Ok(TeardownOutput { deleted })
}

/// `NotReady` while a replication group of this drill still exists.
pub async fn check_cache_teardown(
    deps: &Deps,
    input: CacheInput,
) -> Result<TeardownOutput, OpsError> {
    let plan = &input.plan;
    let scratch = cache_of(plan)?.scratch.replication_group_id.clone();
    let mut left: Vec<String> = drill_groups(deps, plan)
        .await?
        .into_iter()
        .map(|g| format!("{} ({})", g.id, g.status))
        .collect();
    if left.is_empty()
        && let Some(g) = deps.caches.actual(&scratch).await?
    {
        left.push(format!("{} ({})", g.id, g.status));
    }
    if left.is_empty() {
        Ok(TeardownOutput {
            deleted: vec![scratch],
        })
    } else {
        Err(OpsError::NotReady(format!(
            "still deleting: {}",
            left.join(", ")
        )))
    }
}
