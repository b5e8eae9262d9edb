//! The backup's Redis part: a tagged manual snapshot of each replication group, polled until available,
//! optionally exported to S3, and retention of Redis snapshots by the same rules as RDS's (ours only, never
//! the newest `keep_last`, never one held).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use opsplane_shared::OpsError;
use opsplane_shared::aws::elasticache::CacheSnapshot;
use opsplane_shared::domain::backup::{
    TAG_DRILL, TAG_DRILL_SNAPSHOT, select_for_deletion, snapshot_identifier,
};
use opsplane_shared::lock::{HeldLock, renew_held};
use serde::{Deserialize, Serialize};

use crate::Deps;
use crate::backup::{RetentionOutcome, backup_tags};

/// `snapshot-cache`: one replication group of the plan.
#[derive(Debug, Deserialize)]
pub struct CacheSnapshotInput {
    /// The environment.
    pub environment: String,
    /// The run's id.
    pub backup_id: String,
    /// The replication group.
    pub group: String,
    /// The backup's lock, renewed at the start of every call ([`HeldLock`]).
    #[serde(default)]
    pub lock: Option<HeldLock>,
}

/// A Redis snapshot started or found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheSnapshotRef {
    /// The replication group.
    pub group: String,
    /// The snapshot's name.
    pub snapshot_name: String,
    /// Its ARN.
    pub arn: String,
    /// Its status when last seen.
    pub status: String,
    /// When it was taken, once stamped.
    pub created_at: Option<DateTime<Utc>>,
}

impl From<CacheSnapshot> for CacheSnapshotRef {
    fn from(s: CacheSnapshot) -> Self {
        Self {
            group: s.group,
            snapshot_name: s.name,
            arn: s.arn,
            status: s.status,
            created_at: s.created_at,
        }
    }
}

/// Starts a tagged manual snapshot of one replication group (idempotent on retry).
pub async fn snapshot_cache(
    deps: &Deps,
    input: CacheSnapshotInput,
) -> Result<CacheSnapshotRef, OpsError> {
    renew_held(deps.lock.as_ref(), input.lock.as_ref()).await?;
    let spec = deps.spec(&input.environment).await?;
    if spec.cache(&input.group).is_none() {
        return Err(OpsError::invalid(
            "group",
            format!(
                "{} is not a Redis replication group of environment `{}`",
                input.group, input.environment
            ),
        ));
    }
    let name = snapshot_identifier(&input.group, &input.backup_id);
    let tags = backup_tags(&input.environment, &input.backup_id, &spec.tags);
    let s = deps
        .caches
        .create_snapshot(&input.group, &name, &tags)
        .await?;
    tracing::info!(group = %input.group, snapshot = %s.name, status = %s.status, "cache snapshot requested");
    Ok(s.into())
}

/// `check-cache-snapshot`: poll one Redis snapshot.
#[derive(Debug, Deserialize)]
pub struct CheckCacheSnapshotInput {
    /// The snapshot's name.
    pub snapshot_name: String,
    /// The backup's lock, renewed at the start of every call ([`HeldLock`]).
    #[serde(default)]
    pub lock: Option<HeldLock>,
}

/// `NotReady` until the snapshot is `available` (also after an export); a failed one is an error.
pub async fn check_cache_snapshot(
    deps: &Deps,
    input: CheckCacheSnapshotInput,
) -> Result<CacheSnapshotRef, OpsError> {
    renew_held(deps.lock.as_ref(), input.lock.as_ref()).await?;
    let s = deps
        .caches
        .snapshot(&input.snapshot_name)
        .await?
        .ok_or_else(|| {
            OpsError::ResourceNotFound(format!(
                "cache snapshot {} does not exist",
                input.snapshot_name
            ))
        })?;
    match s.status.as_str() {
        "available" => Ok(s.into()),
        "failed" | "deleting" => Err(OpsError::Internal(format!(
            "cache snapshot {} is {}",
            s.name, s.status
        ))),
        other => Err(OpsError::NotReady(format!(
            "cache snapshot {} is {other}",
            s.name
        ))),
    }
}

/// `export-cache-snapshot`: one available snapshot to the spec's bucket.
#[derive(Debug, Deserialize)]
pub struct ExportCacheInput {
    /// The snapshot's name, also the exported files' prefix.
    pub snapshot_name: String,
    /// The bucket.
    pub bucket: String,
    /// The backup's lock, renewed at the start of every call ([`HeldLock`]).
    #[serde(default)]
    pub lock: Option<HeldLock>,
}

/// Where an export went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheExportRef {
    /// The bucket.
    pub bucket: String,
    /// The files' key prefix (ElastiCache writes `<prefix>-<n>.rdb`, one per shard).
    pub key: String,
}

/// Exports the snapshot's `.rdb` files (`CopySnapshot` with `TargetBucket`).
pub async fn export_cache_snapshot(
    deps: &Deps,
    input: ExportCacheInput,
) -> Result<CacheExportRef, OpsError> {
    renew_held(deps.lock.as_ref(), input.lock.as_ref()).await?;
    deps.caches
        .export_snapshot(&input.snapshot_name, &input.snapshot_name, &input.bucket)
        .await?;
    Ok(CacheExportRef {
        bucket: input.bucket,
        key: input.snapshot_name,
    })
}

/// One Map iteration's result.
#[derive(Debug, Clone, Deserialize)]
pub struct CacheIteration {
    /// The snapshot.
    pub snapshot: CacheSnapshotRef,
    /// Its export, if one was made.
    #[serde(default)]
    pub export: Option<CacheExportRef>,
}

/// Deletes the Redis snapshots the pure selection allows in this Region (no drill holds one yet: only
/// `opsplane:hold` keeps one beside the rules).
pub async fn retention(
    deps: &Deps,
    environment: &str,
    now: DateTime<Utc>,
) -> Result<RetentionOutcome, OpsError> {
    let spec = deps.spec(environment).await?;
    let infos: Vec<_> = deps
        .caches
        .manual_snapshots()
        .await?
        .iter()
        .map(CacheSnapshot::info)
        .collect();
    // A snapshot a drill's scratch group was restored from (a running drill, or one that died and awaits
    // the orphan sweep) is held, as an RDS snapshot is by its scratch instance.
    let held: BTreeSet<String> = deps
        .caches
        .groups_named("drill-")
        .await?
        .into_iter()
        .filter(|g| g.tags.contains_key(TAG_DRILL))
        .filter_map(|g| g.tags.get(TAG_DRILL_SNAPSHOT).cloned())
        .collect();
    let decision = select_for_deletion(environment, &infos, &spec.backup, &held, now);
    let mut deleted = Vec::new();
    for name in &decision.delete {
        if deps.caches.delete_snapshot(name).await? {
            tracing::info!(%environment, snapshot = %name, "cache snapshot deleted by retention");
            deleted.push(name.clone());
        }
    }
    let mut kept: BTreeMap<String, usize> = BTreeMap::new();
    for (_, r) in &decision.keep {
        *kept.entry(r.as_str().to_owned()).or_default() += 1;
    }
    Ok(RetentionOutcome {
        region: deps.config.region.clone(),
        deleted,
        kept,
    })
}
